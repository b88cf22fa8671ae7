package dev.longtune.data;

import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/** One turn of a conversation, as in the {@code messages} list of chat data sets. */
public record ChatMessage(Role role, String content) {

    public enum Role {
        SYSTEM, USER, ASSISTANT;

        /** The name in JSON and in the Llama 3 header: {@code system}, {@code user}, {@code assistant}. */
        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The role named {@code name}; empty for anything else. */
        public static Optional<Role> parse(String name) {
            for (Role role : values()) {
                if (role.wireName().equals(name)) {
                    return Optional.of(role);
                }
            }
            return Optional.empty();
        }
    }

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage(Role.SYSTEM, content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage(Role.USER, content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage(Role.ASSISTANT, content);
    }
}

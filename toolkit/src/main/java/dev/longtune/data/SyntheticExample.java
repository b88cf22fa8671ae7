package dev.longtune.data;

import java.util.List;

/**
 * One synthetic LongCite-style example: a conversation (user: instruction, marked document, question;
 * assistant: cited answer), the facts it asks about and the distractor facts it does not.
 *
 * @param index           its index in the set; the same seed and index always give the same example
 * @param targetTokens    the length it was built towards
 * @param estimatedTokens its length as the set's {@link TokenCounter} counted it
 */
public record SyntheticExample(int index, List<ChatMessage> messages, List<PlantedFact> facts,
                               List<PlantedFact> distractors, int sentences, int targetTokens, int estimatedTokens) {

    public SyntheticExample {
        messages = List.copyOf(messages);
        facts = List.copyOf(facts);
        distractors = List.copyOf(distractors);
    }

    public String user() {
        return messages.get(messages.size() - 2).content();
    }

    /** The reference answer. */
    public String answer() {
        return messages.get(messages.size() - 1).content();
    }

    public List<Integer> factSentences() {
        return facts.stream().map(PlantedFact::sentence).toList();
    }

    /** Fraction of the asked-for secret numbers that {@code answer} states. */
    public double numbersFound(String answer) {
        long found = facts.stream().filter(f -> answer.matches("(?s).*\\b" + f.number() + "\\b.*")).count();
        return facts.isEmpty() ? 0 : (double) found / facts.size();
    }
}

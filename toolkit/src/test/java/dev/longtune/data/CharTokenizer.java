package dev.longtune.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** One token per character (its code point), plus the Llama 3 special tokens: exact and readable in tests. */
public final class CharTokenizer implements Tokenizer {

    private static final Map<String, Integer> SPECIAL = Map.of(
            SpecialTokens.BEGIN_OF_TEXT, 128000,
            SpecialTokens.END_OF_TEXT, 128001,
            SpecialTokens.START_HEADER, 128006,
            SpecialTokens.END_HEADER, 128007,
            SpecialTokens.END_OF_TURN, 128009);

    @Override
    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        int i = 0;
        outer:
        while (i < text.length()) {
            for (Map.Entry<String, Integer> e : SPECIAL.entrySet()) {
                if (text.startsWith(e.getKey(), i)) {
                    ids.add(e.getValue());
                    i += e.getKey().length();
                    continue outer;
                }
            }
            int cp = text.codePointAt(i);
            ids.add(cp);
            i += Character.charCount(cp);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            String special = SPECIAL.entrySet().stream().filter(e -> e.getValue() == id).map(Map.Entry::getKey)
                    .findFirst().orElse(null);
            if (special != null) {
                out.append(special);
            } else {
                out.appendCodePoint(id);
            }
        }
        return out.toString();
    }

    @Override
    public SpecialTokens specialTokens() {
        return SpecialTokens.LLAMA_3;
    }
}

package dev.longtune.data;

/**
 * A fact planted in a synthetic document: "The secret number of the {subject} is {number}."
 *
 * @param sentence index of its sentence in the document (its {@code <C{i}>} marker)
 */
public record PlantedFact(int sentence, String subject, int number) {

    public String text() {
        return "The secret number of the " + subject + " is " + number + ".";
    }
}

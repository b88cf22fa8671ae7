package dev.longtune.dist;

/**
 * What a rank's collective throws when another rank of its group has failed ({@link Communicator#abort}): the run
 * cannot go on, and the other rank's error, not this one, says why.
 */
public final class PeerFailedException extends IllegalStateException {
    private final int failedRank;

    public PeerFailedException(String op, int rank, int failedRank, Throwable cause) {
        super(op + ": rank " + rank + " stopped because rank " + failedRank + " failed (" + cause
                + "); the ranks cannot meet again: close the run and start it from its last save", cause);
        this.failedRank = failedRank;
    }

    /** The rank whose failure stopped the group. */
    public int failedRank() { return failedRank; }
}

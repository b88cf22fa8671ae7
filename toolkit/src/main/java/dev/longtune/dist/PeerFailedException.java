package dev.longtune.dist;

/**
 * What a rank's collective throws when another rank of its group has failed ({@link Communicator#abort}): the run
 * cannot go on, and the other rank's error, not this one, says why.
 */
public final class PeerFailedException extends IllegalStateException {
    private final int failedRank;

    public PeerFailedException(String op, int rank, int failedRank, Throwable cause) {
        super(op + ": rank " + rank + " stopped because " + (failedRank >= 0 ? "rank " + failedRank + " failed" : "a rank did not arrive")
                + " (" + cause + "); the ranks cannot meet again: close the run and start it from its last save", cause);
        this.failedRank = failedRank;
    }

    /** The rank whose failure stopped the group, or -1 when a rank did not arrive in time. */
    public int failedRank() { return failedRank; }
}

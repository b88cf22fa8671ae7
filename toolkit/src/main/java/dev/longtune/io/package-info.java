/**
 * Model files: safetensors ({@link dev.longtune.io.SafetensorsFile}, {@link dev.longtune.io.SafetensorsWriter})
 * and Hugging Face checkpoint folders ({@link dev.longtune.io.HfCheckpoint},
 * {@link dev.longtune.io.CheckpointWriter}).
 *
 * <p>Every malformed input is rejected with a {@link dev.longtune.io.MalformedCheckpointException} that names
 * the file, the tensor when there is one, and the problem.
 */
package dev.longtune.io;

package dev.longtune.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The element types a safetensors header may name, with their sizes in bytes.
 *
 * <p>Declared in the order of the reference implementation's {@code Dtype} enum
 * ({@code huggingface/safetensors}, {@code safetensors/src/tensor.rs}), because its writer lays tensors out by
 * descending dtype, then by name, and {@link SafetensorsWriter} does the same so that both produce the same
 * bytes. The sub-byte types {@code F4}, {@code F6_E2M3} and {@code F6_E3M2} are not supported.
 */
public enum SafetensorsDType {
    BOOL(1),
    U8(1),
    I8(1),
    F8_E5M2(1),
    F8_E4M3(1),
    F8_E8M0(1),
    F8_E4M3FNUZ(1),
    F8_E5M2FNUZ(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    C64(8),
    F64(8),
    I64(8),
    U64(8);

    private final int byteSize;

    SafetensorsDType(int byteSize) { this.byteSize = byteSize; }

    /** Bytes per element. */
    public int byteSize() { return byteSize; }

    /** Whether {@link FloatCodec} converts this type to and from {@code float}: F16, BF16, F32 and F64. */
    public boolean isFloat() {
        return this == F16 || this == BF16 || this == F32 || this == F64;
    }

    /** The type a header spells {@code name}, or {@code null} when there is none. */
    public static SafetensorsDType parse(String name) {
        for (SafetensorsDType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** Every supported name, for error messages. */
    static String known() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}

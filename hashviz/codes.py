"""Binary codes: bits (bool), packed codes (uint8) and Hamming distances.

Conventions used everywhere in hashviz:
- ``z`` continuous embeddings (n, n_bits) float;
- ``bits`` = ``z >= 0`` as bool (so sign(0) counts as +1);
- ``codes`` = bits packed 8 to a byte along the last axis, big-endian within a byte
  (``np.packbits`` order), shape (n, ceil(n_bits / 8)), padding bits are 0.
"""

from __future__ import annotations

import numpy as np

from hashviz.errors import InvalidInputError

#: Largest number of bytes of (query x database) xor processed at once by :func:`hamming_distances`.
CHUNK_BYTES = 64 * 1024 * 1024


def to_bits(z) -> np.ndarray:
    """Bits of continuous embeddings: ``z >= 0`` (sign(0) = +1), bool (n, n_bits)."""
    z = np.asarray(z)
    if z.ndim != 2:
        raise InvalidInputError(f"embeddings must be 2-D (n, n_bits), got shape {z.shape}",
                                "pass one row per item")
    return z >= 0


def pack_bits(bits) -> np.ndarray:
    """Pack bool bits (n, n_bits) into uint8 codes (n, ceil(n_bits / 8))."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise InvalidInputError(f"bits must be 2-D (n, n_bits), got shape {bits.shape}", "")
    if bits.dtype != bool:
        if not np.isin(bits, (0, 1)).all():
            raise InvalidInputError("bits must be bool or 0/1", "use to_bits(z) to binarise embeddings")
        bits = bits.astype(bool)
    return np.packbits(bits, axis=1)


def unpack_bits(codes, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint8 codes -> bool bits (n, n_bits)."""
    codes = as_codes(codes)
    if not 1 <= n_bits <= codes.shape[1] * 8:
        raise InvalidInputError(f"n_bits={n_bits} does not fit codes of {codes.shape[1]} bytes",
                                "give the n_bits the codes were packed with")
    return np.unpackbits(codes, axis=1, count=n_bits).astype(bool)


def encode(z) -> np.ndarray:
    """Packed codes of continuous embeddings: ``pack_bits(to_bits(z))``."""
    return pack_bits(to_bits(z))


def as_codes(codes) -> np.ndarray:
    """Validate packed codes: 2-D uint8, C-contiguous."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.dtype != np.uint8:
        raise InvalidInputError(
            f"codes must be packed uint8 of shape (n, n_bytes), got {codes.dtype} {codes.shape}",
            "pack bool bits with hashviz.codes.pack_bits (or encode(z) for embeddings)")
    return np.ascontiguousarray(codes)


def popcount(a) -> np.ndarray:
    """Number of set bits of each element (any unsigned integer array)."""
    return np.bitwise_count(np.asarray(a))


def code_words(codes) -> np.ndarray:
    """Packed uint8 codes (n, n_bytes) viewed as uint64 words (n, ceil(n_bytes / 8)), zero padded — the one word
    view of packed codes (Hamming kernels, label words)."""
    codes = as_codes(codes)
    n, nb = codes.shape
    pad = (-nb) % 8
    if pad:
        codes = np.concatenate([codes, np.zeros((n, pad), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(np.uint64)


def hamming_distances(q_codes, db_codes, *, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Hamming distances between every query and database code, uint16 (nq, ndb).

    Works on 64-bit words (xor + ``np.bitwise_count``), processing query blocks so that the temporary
    xor array stays under ``chunk_bytes``; the output itself is nq * ndb * 2 bytes.
    """
    q, db = as_codes(q_codes), as_codes(db_codes)
    if q.shape[1] != db.shape[1]:
        raise InvalidInputError(f"query codes have {q.shape[1]} bytes but database codes {db.shape[1]}",
                                "encode query and database with the same n_bits")
    qw, dw = code_words(q), code_words(db)
    nq, ndb, nw = qw.shape[0], dw.shape[0], qw.shape[1]
    out = np.empty((nq, ndb), dtype=np.uint16)
    if nw == 1:
        qw1, dw1 = qw[:, 0], dw[:, 0]
        block = max(1, chunk_bytes // max(1, 8 * ndb))
        for s in range(0, nq, block):
            x = np.bitwise_xor(qw1[s:s + block, None], dw1[None, :])
            np.bitwise_count(x, out=x)
            out[s:s + block] = x
        return out
    block = max(1, chunk_bytes // max(1, 8 * ndb * nw))
    for s in range(0, nq, block):
        x = np.bitwise_xor(qw[s:s + block, None, :], dw[None, :, :])
        out[s:s + block] = np.bitwise_count(x).sum(axis=2, dtype=np.uint16)
    return out

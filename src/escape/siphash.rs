//! SipHash-2-4 with a 64-bit output, as systemd uses it to shorten over-long unit names
//! (`siphash24()` in systemd's `src/basic/siphash24.c`, hashing `strlen + 1` bytes via
//! `siphash24_string()`).
//!
//! Written from the algorithm's description (Aumasson & Bernstein, "SipHash: a fast short-input
//! PRF", 2012): 2 compression rounds per 8-byte block, 4 finalisation rounds, the message length
//! in the top byte of the last block.

/// The four-word internal state of SipHash.
struct State([u64; 4]);

impl State {
    fn new(key: &[u8; 16]) -> Self {
        let k0 = u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]);
        let k1 = u64::from_le_bytes([
            key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
        ]);
        State([
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ])
    }

    fn round(&mut self) {
        let v = &mut self.0;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    fn compress(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.round();
        self.0[0] ^= m;
    }
}

/// SipHash-2-4 of `data` under `key`, as a `u64` (the reference implementation's output bytes
/// are this value in little-endian order).
pub fn siphash24(data: &[u8], key: &[u8; 16]) -> u64 {
    let mut state = State::new(key);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        state.compress(u64::from_le_bytes(word));
    }
    let mut last = [0u8; 8];
    let tail = blocks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    // Only the low 8 bits of the length are kept, by definition of the algorithm.
    #[allow(clippy::cast_possible_truncation)]
    {
        last[7] = data.len() as u8;
    }
    state.compress(u64::from_le_bytes(last));
    state.0[2] ^= 0xff;
    for _ in 0..4 {
        state.round();
    }
    let v = state.0;
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::siphash24;

    fn reference_key() -> [u8; 16] {
        let mut key = [0u8; 16];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap();
        }
        key
    }

    #[test]
    fn matches_the_papers_test_vector() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(&msg, &reference_key()), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn empty_message_has_the_reference_hash() {
        // First entry of the reference implementation's vector table (bytes 31 0e 0e dd ...).
        assert_eq!(siphash24(b"", &reference_key()), 0x726f_db47_dd0e_0e31);
    }
}

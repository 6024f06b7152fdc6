//! A fast hasher for the generator's internal maps (unit names, file names, paths).
//!
//! The keys come from the administrator's own unit directories, so the protection of the
//! standard SipHash against chosen keys flooding a map buys nothing here, while hashing was about
//! 4% of the instructions of a 1,000-unit run (generator/bench/compare.sh). The mixing step is the
//! multiply-rotate of the well-known "Fx" hash: one rotate, xor and multiply per 8 bytes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hasher (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A `HashSet` with [`FastHasher`].
pub type FastSet<T> = HashSet<T, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_find_what_was_inserted_and_nothing_else() {
        let mut m: FastMap<String, usize> = FastMap::default();
        for i in 0..2000 {
            m.insert(format!("app{i}.container"), i);
        }
        for i in 0..2000 {
            assert_eq!(m.get(&format!("app{i}.container")), Some(&i));
        }
        assert_eq!(m.get("app2000.container"), None);
        assert_eq!(m.len(), 2000);
    }
}

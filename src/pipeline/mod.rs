//! The data path: content-defined chunking, keyed hashing, compression and
//! authenticated encryption. `crypto` is the only module that touches the
//! AEAD and key material.

pub mod chunker;
pub mod compress;
pub mod crypto;

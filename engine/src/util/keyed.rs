//! HMAC-SHA256 under a secret, the key's state made once and cloned for each value: the
//! `hash` mask's pseudonyms and the clean room's pools hash many values under one key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC-SHA256 state after its key (the key's two blocks hashed once).
#[derive(Clone)]
pub(crate) struct Keyed(Hmac<Sha256>);

impl Keyed {
    pub(crate) fn new(key: &[u8]) -> Keyed {
        Keyed(
            <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    /// HMAC-SHA256 of `text` under the key.
    #[inline]
    pub(crate) fn digest(&self, text: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

//! The board's files, embedded at build time (see `build.rs`).

/// One embedded file.
pub struct Asset {
    /// Its path under `web/src/` (and under `/assets/{BUILD}/`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A strong ETag over its bytes.
    pub etag: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset at `path` (relative to `/assets/{BUILD}/`), if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

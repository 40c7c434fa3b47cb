//! A minimal writer for the "newc" cpio format the kernel unpacks as initramfs.
//!
//! Each entry is a 110-byte ASCII header, the NUL-terminated name padded to a
//! multiple of 4, then the data padded to a multiple of 4:
//!
//! ```text
//! "070701" ino mode uid gid nlink mtime filesize devmajor devminor
//!          rdevmajor rdevminor namesize check      (13 fields, 8 hex digits each)
//! ```
//!
//! The archive ends with an entry named `TRAILER!!!`.
//! (Linux `Documentation/driver-api/early-userspace/buffer-format.rst`.)

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;

/// Writes entries in order; [`CpioWriter::finish`] appends the trailer.
#[derive(Debug)]
pub(crate) struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// A directory (mode 0755) at `name`, relative to the archive root.
    pub(crate) fn dir(&mut self, name: &str) -> io::Result<()> {
        self.entry(name, S_IFDIR | 0o755, 2, &[])
    }

    /// A regular file with permission bits `perm`.
    pub(crate) fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, data)
    }

    /// Writes the trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, &[])?;
        Ok(self.out)
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) -> io::Result<()> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "cpio entry too large");
        let filesize = u32::try_from(data.len()).map_err(|_| too_big())?;
        let namesize = u32::try_from(name.len() + 1).map_err(|_| too_big())?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [ino, mode, 0, 0, nlink, 0, filesize, 0, 0, 0, 0, namesize, 0];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_single_file_archive() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"hi").unwrap();
        let out = w.finish().unwrap();
        let expected = concat!(
            // magic, ino 1, mode 0100644, uid, gid, nlink 1, mtime, size 2,
            "070701",
            "00000001",
            "000081a4",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000002",
            // devmajor, devminor, rdevmajor, rdevminor, namesize 2, check
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000002",
            "00000000",
            "a\0",    // 110 + 2 = 112, aligned
            "hi\0\0", // data padded to 4
            "070701",
            "00000002",
            "00000000",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000b",
            "00000000",
            "TRAILER!!!\0\0\0\0", // 110 + 11 = 121, padded to 124
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn every_entry_is_four_byte_aligned() {
        let mut w = CpioWriter::new(Vec::new());
        for len in 0..9usize {
            let name = "n".repeat(len + 1);
            w.file(&name, 0o600, &vec![7; len]).unwrap();
            assert_eq!(w.written % 4, 0, "after entry of {len} bytes");
        }
        w.dir("d").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
    }
}

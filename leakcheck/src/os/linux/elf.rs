//! Reading an ELF file's dynamic symbol table: which symbols a loaded object imports.
//!
//! Only what [`imports`] needs: the section headers, `.dynsym` and its string table, read with
//! positioned reads (an executable may be large; its debug sections are never read). Files of
//! the other word size or byte order than this process are not loaded here, and are refused.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// `SHT_DYNSYM`: the section type of the dynamic symbol table.
const SHT_DYNSYM: u32 = 11;
/// `SHN_UNDEF`: the section index of a symbol the object imports.
const SHN_UNDEF: u16 = 0;
/// Larger symbol or string tables are taken for a damaged file.
const TABLE_LIMIT: u64 = 64 << 20;

/// Whether the ELF object at `path` imports `symbol` (lists it in `.dynsym` as undefined).
pub(crate) fn imports(path: &Path, symbol: &[u8]) -> Result<bool, String> {
    let file = File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
    Elf { file: &file }
        .imports(symbol)
        .map_err(|why| format!("{}: {why}", path.display()))
}

/// The layout of this process's ELF class: offsets and sizes of the fields read.
struct Layout {
    /// `e_ident[EI_CLASS]`: 1 for 32-bit, 2 for 64-bit.
    class: u8,
    /// `e_shoff`, `e_shentsize`, `e_shnum` in the file header.
    shoff: usize,
    shentsize: usize,
    shnum: usize,
    /// `sh_type`, `sh_offset`, `sh_size`, `sh_link` in a section header.
    sh_type: usize,
    sh_offset: usize,
    sh_size: usize,
    sh_link: usize,
    /// The size of a symbol, and `st_name` and `st_shndx` in it.
    sym_size: usize,
    st_name: usize,
    st_shndx: usize,
}

#[cfg(target_pointer_width = "64")]
const LAYOUT: Layout = Layout {
    class: 2,
    shoff: 0x28,
    shentsize: 0x3a,
    shnum: 0x3c,
    sh_type: 4,
    sh_offset: 24,
    sh_size: 32,
    sh_link: 40,
    sym_size: 24,
    st_name: 0,
    st_shndx: 6,
};

#[cfg(target_pointer_width = "32")]
const LAYOUT: Layout = Layout {
    class: 1,
    shoff: 0x20,
    shentsize: 0x2e,
    shnum: 0x30,
    sh_type: 4,
    sh_offset: 16,
    sh_size: 20,
    sh_link: 24,
    sym_size: 16,
    st_name: 0,
    st_shndx: 14,
};

/// `e_ident[EI_DATA]` of this process: 1 little-endian, 2 big-endian.
const DATA: u8 = if cfg!(target_endian = "little") { 1 } else { 2 };

/// A section's place in the file.
struct Section {
    offset: u64,
    size: u64,
    link: usize,
}

struct Elf<'a> {
    file: &'a File,
}

impl Elf<'_> {
    fn imports(&self, symbol: &[u8]) -> Result<bool, &'static str> {
        let size = self.file.metadata().map_err(|_| "unreadable")?.len();
        let header = self.read(0, size.min(64) as usize)?;
        if header.get(..4) != Some(b"\x7fELF") {
            return Err("not an ELF file");
        }
        if header[4] != LAYOUT.class || header[5] != DATA {
            return Err("an ELF file of another word size or byte order than this process");
        }
        let shoff = word(&header, LAYOUT.shoff)?;
        let shentsize = usize::from(half(&header, LAYOUT.shentsize)?);
        let shnum = usize::from(half(&header, LAYOUT.shnum)?);
        if shoff == 0 || shnum == 0 || shentsize < LAYOUT.sh_link + 4 {
            return Err("no section headers");
        }
        let headers = self.read(shoff, shnum * shentsize)?;
        let section = |index: usize| -> Result<Section, &'static str> {
            let header = headers
                .get(index * shentsize..(index + 1) * shentsize)
                .ok_or("a section link out of range")?;
            Ok(Section {
                offset: word(header, LAYOUT.sh_offset)?,
                size: word(header, LAYOUT.sh_size)?,
                link: usize::try_from(full(header, LAYOUT.sh_link)?).unwrap_or(usize::MAX),
            })
        };
        let dynsym = (0..shnum)
            .find(|&index| {
                let header = &headers[index * shentsize..(index + 1) * shentsize];
                full(header, LAYOUT.sh_type) == Ok(SHT_DYNSYM)
            })
            .ok_or("no dynamic symbol table")?;
        let dynsym = section(dynsym)?;
        let dynstr = section(dynsym.link)?;
        let symbols = self.table(&dynsym)?;
        let strings = self.table(&dynstr)?;
        Ok(symbols.chunks_exact(LAYOUT.sym_size).any(|entry| {
            let undefined = half(entry, LAYOUT.st_shndx) == Ok(SHN_UNDEF);
            let name = full(entry, LAYOUT.st_name)
                .ok()
                .and_then(|at| strings.get(usize::try_from(at).ok()?..))
                .map(|rest| rest.split(|&b| b == 0).next().unwrap_or_default());
            undefined && name == Some(symbol)
        }))
    }

    /// A whole section, if it is of a believable size.
    fn table(&self, section: &Section) -> Result<Vec<u8>, &'static str> {
        if section.size > TABLE_LIMIT {
            return Err("a symbol table larger than any real one");
        }
        self.read(section.offset, section.size as usize)
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, &'static str> {
        let mut bytes = vec![0; len];
        self.file
            .read_exact_at(&mut bytes, offset)
            .map_err(|_| "truncated")?;
        Ok(bytes)
    }
}

/// A 16-bit field at `at`.
fn half(bytes: &[u8], at: usize) -> Result<u16, &'static str> {
    let field = bytes.get(at..at + 2).ok_or("truncated")?;
    Ok(u16::from_ne_bytes([field[0], field[1]]))
}

/// A 32-bit field at `at`.
fn full(bytes: &[u8], at: usize) -> Result<u32, &'static str> {
    let field = bytes.get(at..at + 4).ok_or("truncated")?;
    Ok(u32::from_ne_bytes([field[0], field[1], field[2], field[3]]))
}

/// An address- or offset-sized field at `at` (`ElfN_Off`, `ElfN_Xword`...).
fn word(bytes: &[u8], at: usize) -> Result<u64, &'static str> {
    if LAYOUT.class == 2 {
        let field = bytes.get(at..at + 8).ok_or("truncated")?;
        let mut word = [0; 8];
        word.copy_from_slice(field);
        Ok(u64::from_ne_bytes(word))
    } else {
        full(bytes, at).map(u64::from)
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// A minimal ELF64 of this byte order: the null section, `.dynsym`, `.dynstr`, with one
    /// imported and one defined symbol.
    fn tiny_elf() -> Vec<u8> {
        let strings = b"\0_dl_find_object\0defined_here\0".to_vec();
        let mut symbols = vec![0u8; 3 * 24];
        let mut symbol = |index: usize, name: u32, shndx: u16| {
            let at = index * 24;
            symbols[at..at + 4].copy_from_slice(&name.to_ne_bytes());
            symbols[at + 6..at + 8].copy_from_slice(&shndx.to_ne_bytes());
        };
        symbol(1, 1, SHN_UNDEF);
        symbol(2, 17, 1);
        let symbols_at = 64u64;
        let strings_at = symbols_at + symbols.len() as u64;
        let headers_at = strings_at + strings.len() as u64;
        let mut file = vec![0u8; 64];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2;
        file[5] = DATA;
        file[0x28..0x30].copy_from_slice(&headers_at.to_ne_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_ne_bytes());
        file[0x3c..0x3e].copy_from_slice(&3u16.to_ne_bytes());
        file.extend_from_slice(&symbols);
        file.extend_from_slice(&strings);
        let mut section = |kind: u32, offset: u64, size: u64, link: u32| {
            let mut header = vec![0u8; 64];
            header[4..8].copy_from_slice(&kind.to_ne_bytes());
            header[24..32].copy_from_slice(&offset.to_ne_bytes());
            header[32..40].copy_from_slice(&size.to_ne_bytes());
            header[40..44].copy_from_slice(&link.to_ne_bytes());
            file.extend_from_slice(&header);
        };
        section(0, 0, 0, 0);
        section(SHT_DYNSYM, symbols_at, symbols.len() as u64, 2);
        section(3, strings_at, strings.len() as u64, 0);
        file
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("leakcheck-elf-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn imports_are_the_undefined_dynamic_symbols() {
        let path = write("tiny", &tiny_elf());
        assert_eq!(imports(&path, b"_dl_find_object"), Ok(true));
        assert_eq!(
            imports(&path, b"defined_here"),
            Ok(false),
            "defined, not imported"
        );
        assert_eq!(
            imports(&path, b"_dl_find"),
            Ok(false),
            "a prefix is another name"
        );
        assert_eq!(imports(&path, b"absent"), Ok(false));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn damaged_files_are_refused_with_their_path() {
        let path = write("text", b"#!/bin/sh\necho not an object\n");
        let error = imports(&path, b"x").unwrap_err();
        assert!(error.ends_with(": not an ELF file"), "{error}");
        assert!(error.contains("leakcheck-elf-"), "{error}");
        let mut truncated = tiny_elf();
        truncated.truncate(100);
        std::fs::write(&path, truncated).unwrap();
        assert!(imports(&path, b"x").unwrap_err().ends_with(": truncated"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn this_test_binary_can_be_read() {
        let exe = std::path::Path::new("/proc/self/exe");
        assert_eq!(imports(exe, b"no_such_symbol_anywhere"), Ok(false));
        // Every dynamically linked Rust program imports `malloc`.
        assert_eq!(imports(exe, b"malloc"), Ok(true));
    }
}

//! Looking for secrets in a browser profile on disk: every file under a
//! directory, every byte of it, for each needle (a token) in each form a
//! browser or an extension could have written it in.
//!
//! The forms of a needle ([`forms_of`]):
//!
//! - the bytes themselves;
//! - UTF-16LE, as browsers keep some strings (V8 and SpiderMonkey two-byte
//!   strings, IndexedDB, DOM storage);
//! - base64, standard and URL-safe, padded or not, wherever the needle sits
//!   inside a larger encoded value (see [`base64_forms`]).
//!
//! What it cannot see: a needle that was compressed, encrypted, split, or
//! written in some other encoding (hex, percent-encoding, base64 broken into
//! lines). Browsers compress some stores (LevelDB tables with snappy in
//! Chromium, IndexedDB values with snappy and `.jsonlz4` files with LZ4 in
//! Firefox); both compressors copy bytes that do not repeat earlier data as
//! they are, so a random token usually survives, but a part of it that
//! happens to repeat nearby data can become a back-reference. A scan that
//! counts 0 is only as good as a control scan, on the same kind of profile,
//! that finds what was written in the clear.
//!
//! Plain Rust with no browser: the unit tests at the end run natively.

use std::fmt;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// Needles shorter than this are refused: the stable part of a short
/// needle's base64 is a few characters, which random data contains by
/// chance.
pub const MIN_NEEDLE: usize = 8;

/// How much of a file is read at once.
const CHUNK: usize = 8 << 20;

/// One form of a needle: the bytes searched for, and what they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    /// `raw`, `utf-16le`, or e.g. `base64 +1` (`base64url`, or
    /// `base64/base64url` when both alphabets give the same text).
    pub label: String,
    pub bytes: Vec<u8>,
}

/// Where in the tree a form was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In a regular file's contents.
    Contents,
    /// In the name of a file, directory or link.
    Name,
    /// In the target of a symbolic link (read, never followed).
    LinkTarget,
    /// In a Firefox mozLz4 file's contents once decompressed
    /// ([`moz_lz4`]); its compressed bytes are searched as
    /// [`Place::Contents`] too.
    Decompressed,
}

/// Occurrences of one form of one needle in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub path: PathBuf,
    pub place: Place,
    /// Index of the needle in the `needles` given to [`scan_profile`].
    pub needle: usize,
    /// The form's [`Form::label`].
    pub form: String,
    pub count: usize,
}

/// What [`scan_profile`] saw.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub root: PathBuf,
    /// Regular files read to the end.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Symbolic links (their targets are searched, never followed).
    pub links: usize,
    /// Files also searched decompressed (mozLz4).
    pub decompressed: usize,
    pub hits: Vec<Hit>,
    /// What was not read, and why: sockets, FIFOs and devices.
    pub skipped: Vec<(PathBuf, String)>,
    /// What could not be read. A scan that must prove absence should
    /// assert this is empty.
    pub errors: Vec<(PathBuf, String)>,
}

impl ScanReport {
    /// Occurrences of needle `needle`, in every form and place.
    pub fn count(&self, needle: usize) -> usize {
        self.hits
            .iter()
            .filter(|h| h.needle == needle)
            .map(|h| h.count)
            .sum()
    }

    /// Occurrences of every needle.
    pub fn total(&self) -> usize {
        self.hits.iter().map(|h| h.count).sum()
    }

    /// The paths where needle `needle` was found, each once, in scan order.
    pub fn paths_with(&self, needle: usize) -> Vec<&Path> {
        let mut paths: Vec<&Path> = Vec::new();
        for h in self.hits.iter().filter(|h| h.needle == needle) {
            if paths.last() != Some(&h.path.as_path()) {
                paths.push(&h.path);
            }
        }
        paths
    }
}

impl fmt::Display for ScanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scanned {}: {} files ({} bytes, {} also decompressed), {} links; {} occurrences, \
             {} skipped, {} errors",
            self.root.display(),
            self.files,
            self.bytes,
            self.decompressed,
            self.links,
            self.total(),
            self.skipped.len(),
            self.errors.len()
        )?;
        let rel = |p: &Path| {
            p.strip_prefix(&self.root)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        for h in &self.hits {
            writeln!(
                f,
                "  needle {} as {} x{} in {:?} of {}",
                h.needle,
                h.form,
                h.count,
                h.place,
                rel(&h.path)
            )?;
        }
        for (p, why) in &self.skipped {
            writeln!(f, "  skipped {}: {why}", rel(p))?;
        }
        for (p, why) in &self.errors {
            writeln!(f, "  error {}: {why}", rel(p))?;
        }
        Ok(())
    }
}

/// The forms searched for `needle`: raw, UTF-16LE (of the text if it is
/// UTF-8, else of each byte as Latin-1), and [`base64_forms`]. Forms with
/// the same bytes are one form, labelled with every name it has.
pub fn forms_of(needle: &[u8]) -> Vec<Form> {
    let utf16: Vec<u8> = match std::str::from_utf8(needle) {
        Ok(text) => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Err(_) => needle.iter().flat_map(|&b| [b, 0]).collect(),
    };
    let mut forms = vec![
        Form {
            label: "raw".to_owned(),
            bytes: needle.to_vec(),
        },
        Form {
            label: "utf-16le".to_owned(),
            bytes: utf16,
        },
    ];
    for form in base64_forms(needle) {
        match forms.iter_mut().find(|f| f.bytes == form.bytes) {
            Some(same) => {
                // Only the alphabet can differ: "base64 +1" and "base64url +1".
                let (name, alignment) = form.label.split_once(' ').unwrap_or((&form.label, ""));
                let (old, _) = same.label.split_once(' ').unwrap_or((&same.label, ""));
                same.label = format!("{old}/{name} {alignment}");
            }
            None => forms.push(form),
        }
    }
    forms
}

/// The base64 texts that appear wherever `needle` is inside a larger value
/// that was base64-encoded, standard (`+/`) or URL-safe (`-_`), padded or
/// not.
///
/// Base64 turns each 3 bytes into 4 characters of 6 bits. Where a needle
/// starts in the encoded value matters: at a byte offset that is 0, 1 or
/// 2 modulo 3 its bits are cut into 6-bit characters in three different
/// ways, giving three unrelated texts, and no one encoding of the needle
/// alone finds the other two. So for each alignment `k` this encodes `k`
/// filler bytes followed by the needle, and keeps only the characters made
/// of needle bits alone: character `i` holds bits `6i..6i+6`, the needle's
/// bits are `8k..8(k+n)`, so the stable characters are those from
/// `ceil(8k/6)` to `floor(8(k+n)/6)`. The characters before mix in filler
/// bits (in real data, the bytes before the needle), the ones after mix in
/// whatever follows the needle; both are dropped. Padding (`=`) only ever
/// follows the last, partial, group of the whole value, so it is never part
/// of the stable text, and the same text matches padded and unpadded
/// encodings.
pub fn base64_forms(needle: &[u8]) -> Vec<Form> {
    let mut forms = Vec::new();
    for (name, engine) in [("base64", STANDARD_NO_PAD), ("base64url", URL_SAFE_NO_PAD)] {
        for k in 0..3usize {
            let mut input = vec![0u8; k];
            input.extend_from_slice(needle);
            let text = engine.encode(&input);
            let start = (8 * k).div_ceil(6);
            let end = 8 * (k + needle.len()) / 6;
            forms.push(Form {
                label: format!("{name} +{k}"),
                bytes: text.as_bytes()[start..end].to_vec(),
            });
        }
    }
    forms
}

/// Walk every entry under `dir` (not following symbolic links) and count,
/// for each needle, the occurrences of each of its [`forms_of`]: in the
/// contents of every regular file, read to its last byte; in every entry's
/// name; in every link's target. Sockets, FIFOs and devices are listed as
/// skipped; what cannot be read is listed as an error. Nothing else is
/// skipped: no file is too large, no directory uninteresting.
///
/// Panics on a needle shorter than [`MIN_NEEDLE`] bytes.
pub fn scan_profile(dir: &Path, needles: &[&[u8]]) -> ScanReport {
    scan_with_chunk(dir, needles, CHUNK)
}

/// Each distinct byte string searched for, with every (needle, form label)
/// it stands for.
struct Pattern {
    bytes: Vec<u8>,
    meanings: Vec<(usize, String)>,
}

/// All the patterns, and one regex that finds any of them: a literal
/// alternation, which regex searches with a multi-substring prefilter, in
/// one pass over the bytes however many patterns there are.
struct Patterns {
    list: Vec<Pattern>,
    any: regex::bytes::Regex,
    longest: usize,
}

fn patterns(needles: &[&[u8]]) -> Patterns {
    let mut list: Vec<Pattern> = Vec::new();
    for (i, needle) in needles.iter().enumerate() {
        assert!(
            needle.len() >= MIN_NEEDLE,
            "needle {i} is {} bytes; scan_profile needs at least {MIN_NEEDLE}",
            needle.len()
        );
        for form in forms_of(needle) {
            match list.iter_mut().find(|p| p.bytes == form.bytes) {
                Some(p) => p.meanings.push((i, form.label)),
                None => list.push(Pattern {
                    bytes: form.bytes,
                    meanings: vec![(i, form.label)],
                }),
            }
        }
    }
    // Each pattern byte for byte (`(?-u)`: bytes, not UTF-8 characters).
    let alternation: Vec<String> = list
        .iter()
        .map(|p| p.bytes.iter().map(|b| format!("\\x{b:02x}")).collect())
        .collect();
    let any = regex::bytes::Regex::new(&format!("(?-u:{})", alternation.join("|")))
        .unwrap_or_else(|e| panic!("the patterns' regex: {e}"));
    let longest = list.iter().map(|p| p.bytes.len()).max().unwrap_or(1);
    Patterns { list, any, longest }
}

/// [`scan_profile`], reading files `chunk` bytes at a time.
fn scan_with_chunk(dir: &Path, needles: &[&[u8]], chunk: usize) -> ScanReport {
    let patterns = patterns(needles);
    let mut report = ScanReport {
        root: dir.to_owned(),
        ..ScanReport::default()
    };
    walk(dir, &patterns, chunk.max(1), &mut report);
    report
}

fn walk(dir: &Path, patterns: &Patterns, chunk: usize, report: &mut ScanReport) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            report
                .errors
                .push((dir.to_owned(), format!("read_dir: {e}")));
            return;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => report
                .errors
                .push((dir.to_owned(), format!("read_dir entry: {e}"))),
        }
    }
    paths.sort();
    for path in paths {
        if let Some(name) = path.file_name() {
            let mut counts = vec![0; patterns.list.len()];
            count_in(patterns, name.as_bytes(), 0, &mut counts);
            record(report, &path, Place::Name, patterns, &counts);
        }
        // lstat: a link is itself, never what it points to.
        let kind = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta.file_type(),
            Err(e) => {
                report.errors.push((path, format!("lstat: {e}")));
                continue;
            }
        };
        if kind.is_dir() {
            walk(&path, patterns, chunk, report);
        } else if kind.is_symlink() {
            report.links += 1;
            match std::fs::read_link(&path) {
                Ok(target) => {
                    let mut counts = vec![0; patterns.list.len()];
                    count_in(patterns, target.as_os_str().as_bytes(), 0, &mut counts);
                    record(report, &path, Place::LinkTarget, patterns, &counts);
                }
                Err(e) => report.errors.push((path, format!("readlink: {e}"))),
            }
        } else if kind.is_file() {
            match scan_file(&path, patterns, chunk) {
                Ok((size, counts, moz_lz4)) => {
                    report.files += 1;
                    report.bytes += size;
                    record(report, &path, Place::Contents, patterns, &counts);
                    if moz_lz4 {
                        scan_moz_lz4(&path, patterns, report);
                    }
                }
                Err(e) => report.errors.push((path, format!("read: {e}"))),
            }
        } else {
            let what = if kind.is_socket() {
                "socket"
            } else if kind.is_fifo() {
                "fifo"
            } else if kind.is_block_device() {
                "block device"
            } else if kind.is_char_device() {
                "character device"
            } else {
                "unknown file type"
            };
            report.skipped.push((path, what.to_owned()));
        }
    }
}

/// Count every pattern in the file at `path`, read `chunk` bytes at a time.
/// Each read is searched together with the last `longest - 1` bytes before
/// it (`carry`), so a needle cut by a read boundary is found; an occurrence
/// that ends inside the carried bytes lay wholly in the previous buffer and
/// was counted there, so only those ending after them count.
///
/// Also says whether the file starts with [`MOZ_LZ4_MAGIC`].
fn scan_file(
    path: &Path,
    patterns: &Patterns,
    chunk: usize,
) -> std::io::Result<(u64, Vec<usize>, bool)> {
    let mut file = std::fs::File::open(path)?;
    let mut head: Vec<u8> = Vec::new();
    let mut counts = vec![0usize; patterns.list.len()];
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + patterns.longest);
    let mut carry = 0usize;
    let mut size = 0u64;
    let mut block = vec![0u8; chunk];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if head.len() < MOZ_LZ4_MAGIC.len() {
            let more = (MOZ_LZ4_MAGIC.len() - head.len()).min(n);
            head.extend_from_slice(&block[..more]);
        }
        buf.extend_from_slice(&block[..n]);
        count_in(patterns, &buf, carry, &mut counts);
        let keep = buf.len().min(patterns.longest - 1);
        buf.drain(..buf.len() - keep);
        carry = keep;
    }
    Ok((size, counts, head == MOZ_LZ4_MAGIC))
}

/// Search the decompressed contents of the mozLz4 file at `path`.
fn scan_moz_lz4(path: &Path, patterns: &Patterns, report: &mut ScanReport) {
    let decoded = std::fs::read(path)
        .map_err(|e| format!("read: {e}"))
        .and_then(|data| moz_lz4(&data));
    match decoded {
        Ok(plain) => {
            report.decompressed += 1;
            let mut counts = vec![0; patterns.list.len()];
            count_in(patterns, &plain, 0, &mut counts);
            record(report, path, Place::Decompressed, patterns, &counts);
        }
        Err(e) => report
            .errors
            .push((path.to_owned(), format!("mozLz4: {e}"))),
    }
}

/// The start of Firefox's mozLz4 files (`*.jsonlz4`, `*.json.lz4`,
/// `*.mozlz4`: the DNR rules of `extension-dnr/`, the session store,
/// `addonStartup.json.lz4`, the search settings).
const MOZ_LZ4_MAGIC: &[u8] = b"mozLz40\0";

/// The largest decompressed size believed.
const MOZ_LZ4_MAX: usize = 1 << 30;

/// Decompress a mozLz4 file: [`MOZ_LZ4_MAGIC`], the decompressed size as a
/// little-endian u32, then one LZ4 block (Firefox's `lz4.sys.mjs`). LZ4
/// replaces a run of 4 or more bytes that occurred earlier in the file by a
/// reference to it, so a token that shares such a run with what precedes it
/// (a JSON key, say) is not whole in the compressed bytes. Seen: a rule
/// header value starting `…dynamicrule…` in a file that already said
/// `dynamicRuleset`.
pub fn moz_lz4(data: &[u8]) -> Result<Vec<u8>, String> {
    let rest = data.strip_prefix(MOZ_LZ4_MAGIC).ok_or("no mozLz4 magic")?;
    let (size, block) = rest
        .split_first_chunk::<4>()
        .ok_or("no decompressed size")?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > MOZ_LZ4_MAX {
        return Err(format!("a decompressed size of {size} bytes"));
    }
    lz4_block(block, size)
}

/// Decode one LZ4 block
/// (<https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md>): a
/// series of sequences, each a token byte (literal length, match length),
/// more length bytes while they are 255, the literals, then (except in the
/// last sequence) a 2-byte little-endian offset back into the output and
/// the match, 4 bytes or more, copied byte by byte (it may overlap itself).
fn lz4_block(src: &[u8], size: usize) -> Result<Vec<u8>, String> {
    fn byte(src: &[u8], i: &mut usize) -> Result<u8, String> {
        let b = *src.get(*i).ok_or("truncated")?;
        *i += 1;
        Ok(b)
    }
    fn length(src: &[u8], i: &mut usize, nibble: u8) -> Result<usize, String> {
        let mut n = usize::from(nibble);
        if nibble == 15 {
            loop {
                let b = byte(src, i)?;
                n += usize::from(b);
                if b != 255 {
                    break;
                }
            }
        }
        Ok(n)
    }
    let mut out = Vec::with_capacity(size);
    let mut i = 0;
    loop {
        let token = byte(src, &mut i)?;
        let literals = length(src, &mut i, token >> 4)?;
        let run = src
            .get(i..i + literals)
            .ok_or("literals past the end of the block")?;
        out.extend_from_slice(run);
        i += literals;
        if i == src.len() {
            break;
        }
        let offset = usize::from(byte(src, &mut i)?) | usize::from(byte(src, &mut i)?) << 8;
        if offset == 0 || offset > out.len() {
            return Err(format!(
                "a match offset of {offset} at output byte {}",
                out.len()
            ));
        }
        let matched = length(src, &mut i, token & 15)? + 4;
        if out.len() + matched > size {
            return Err(format!("more than the stated {size} bytes"));
        }
        let from = out.len() - offset;
        for k in 0..matched {
            let b = out[from + k];
            out.push(b);
        }
    }
    if out.len() == size {
        Ok(out)
    } else {
        Err(format!("{} bytes, not the stated {size}", out.len()))
    }
}

/// Add to `counts` every occurrence of each pattern in `hay` that ends after
/// its first `carry` bytes, overlapping ones included. The combined regex
/// finds the leftmost position where some pattern starts; there every
/// pattern is compared (one may be a prefix of another, which the
/// alternation alone would hide), and the search goes on one byte further.
fn count_in(patterns: &Patterns, hay: &[u8], carry: usize, counts: &mut [usize]) {
    let mut at = 0;
    while let Some(m) = patterns.any.find_at(hay, at) {
        let start = m.start();
        for (count, p) in counts.iter_mut().zip(&patterns.list) {
            if hay[start..].starts_with(&p.bytes) && start + p.bytes.len() > carry {
                *count += 1;
            }
        }
        at = start + 1;
    }
}

fn record(
    report: &mut ScanReport,
    path: &Path,
    place: Place,
    patterns: &Patterns,
    counts: &[usize],
) {
    for (p, &count) in patterns.list.iter().zip(counts) {
        if count == 0 {
            continue;
        }
        for (needle, form) in &p.meanings {
            report.hits.push(Hit {
                path: path.to_owned(),
                place,
                needle: *needle,
                form: form.clone(),
                count,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // as in the suites that ran these tests before
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    /// A fresh directory under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(what: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tokenward-scan-{what}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, rel: &str, contents: &[u8]) -> PathBuf {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Deterministic pseudo-random bytes (xorshift64*).
    struct Noise(u64);

    impl Noise {
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n)
                .map(|_| {
                    self.0 ^= self.0 >> 12;
                    self.0 ^= self.0 << 25;
                    self.0 ^= self.0 >> 27;
                    (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
                })
                .collect()
        }
    }

    const TOKEN: &[u8] = b"tw_live_Qx7pL2mZ9vR4kT8sN1bY";

    #[test]
    fn raw_needles_are_counted_per_file_and_absent_ones_are_zero() {
        let d = TempDir::new("raw");
        let mut noise = Noise(1);
        let mut blob = noise.bytes(1000);
        blob.extend_from_slice(TOKEN);
        blob.extend(noise.bytes(500));
        blob.extend_from_slice(TOKEN);
        let a = d.write("Default/Local Extension Settings/id/000003.log", &blob);
        d.write("other/file.bin", &noise.bytes(4000));
        let absent: &[u8] = b"never-written-9f8e7d6c";
        let r = scan_profile(&d.0, &[TOKEN, absent]);
        assert_eq!(r.count(0), 2, "{r}");
        assert_eq!(r.count(1), 0, "{r}");
        assert_eq!(r.paths_with(0), [a.as_path()], "{r}");
        assert_eq!(r.files, 2);
        assert_eq!(r.bytes, blob.len() as u64 + 4000);
        assert!(r.errors.is_empty() && r.skipped.is_empty(), "{r}");
    }

    #[test]
    fn a_needle_inside_base64_of_a_larger_blob_is_found_at_each_alignment() {
        let mut noise = Noise(7);
        for prefix in 0..9 {
            for suffix in [0usize, 1, 2, 3, 10] {
                let mut blob = noise.bytes(prefix);
                blob.extend_from_slice(TOKEN);
                blob.extend(noise.bytes(suffix));
                for (name, text) in [
                    ("base64", STANDARD.encode(&blob)),
                    ("base64 no pad", STANDARD_NO_PAD.encode(&blob)),
                    ("base64url", URL_SAFE.encode(&blob)),
                    ("base64url no pad", URL_SAFE_NO_PAD.encode(&blob)),
                ] {
                    let d = TempDir::new("b64");
                    let mut file = b"{\"state\":\"".to_vec();
                    file.extend_from_slice(text.as_bytes());
                    file.extend_from_slice(b"\"}");
                    d.write("Default/IndexedDB/x.ldb", &file);
                    let r = scan_profile(&d.0, &[TOKEN]);
                    assert_eq!(
                        r.count(0),
                        1,
                        "{name} of {prefix} bytes + token + {suffix} bytes: {text}\n{r}"
                    );
                    let want = format!("+{}", prefix % 3);
                    assert!(
                        r.hits[0].form.contains("base64") && r.hits[0].form.ends_with(&want),
                        "{name}, prefix {prefix}: found as {}",
                        r.hits[0].form
                    );
                }
            }
        }
    }

    #[test]
    fn the_stable_part_is_exactly_the_needle_only_characters() {
        // 3 bytes at alignment 0 are exactly one 4-character group.
        let forms = base64_forms(b"abc");
        assert_eq!(forms[0].bytes, b"YWJj");
        // At alignment 1 the first character mixing filler bits is dropped,
        // and so is the last, which mixes in what follows.
        assert_eq!(forms[1].label, "base64 +1");
        let full = STANDARD_NO_PAD.encode(b"\0abc");
        assert_eq!(forms[1].bytes, full.as_bytes()[2..5]);
        // The alphabets differ only where a 62 or 63 falls.
        let f = forms_of(&[0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff]);
        assert!(f.iter().any(|f| f.label == "base64 +0"), "{f:?}");
        assert!(f.iter().any(|f| f.label == "base64url +0"), "{f:?}");
        let f = forms_of(b"AAAAAAAAAAAA");
        assert!(f.iter().any(|f| f.label == "base64/base64url +0"), "{f:?}");
    }

    #[test]
    fn utf16_forms_are_found() {
        let d = TempDir::new("utf16");
        let token = "tok-ünïcode-Zq81xx";
        let mut file = b"\x00\x01header".to_vec();
        file.extend(token.encode_utf16().flat_map(u16::to_le_bytes));
        d.write("storage/default/moz-extension/idb/1.sqlite", &file);
        let r = scan_profile(&d.0, &[token.as_bytes()]);
        assert_eq!(r.count(0), 1, "{r}");
        assert_eq!(r.hits[0].form, "utf-16le");
    }

    #[test]
    fn a_needle_cut_by_a_read_boundary_is_counted_once() {
        let d = TempDir::new("chunk");
        let mut noise = Noise(3);
        let mut blob = noise.bytes(37);
        blob.extend_from_slice(TOKEN);
        blob.extend(noise.bytes(11));
        blob.extend_from_slice(TOKEN);
        d.write("f", &blob);
        for chunk in 1..=blob.len() + 1 {
            let r = scan_with_chunk(&d.0, &[TOKEN], chunk);
            assert_eq!(r.count(0), 2, "chunk {chunk}\n{r}");
            assert_eq!(r.bytes, blob.len() as u64);
        }
    }

    #[test]
    fn links_are_not_followed_and_sockets_are_skipped_but_names_are_searched() {
        let outside = TempDir::new("outside");
        outside.write("secret.txt", TOKEN);
        let d = TempDir::new("links");
        d.write("plain.txt", b"nothing here");
        std::os::unix::fs::symlink(&outside.0, d.0.join("lock")).unwrap();
        std::os::unix::fs::symlink("127.0.0.1:+4242", d.0.join(".parentlock")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(d.0.join("sock")).unwrap();
        let name = format!("cache-{}", std::str::from_utf8(TOKEN).unwrap());
        d.write(&name, b"x");
        let r = scan_profile(&d.0, &[TOKEN]);
        assert_eq!(r.count(0), 1, "{r}");
        assert_eq!(r.hits[0].place, Place::Name);
        assert_eq!(r.links, 2);
        assert_eq!(r.files, 2);
        assert_eq!(r.skipped.len(), 1, "{r}");
        assert_eq!(r.skipped[0].1, "socket");
        assert!(r.errors.is_empty(), "{r}");

        let target = TempDir::new("target");
        let link_to = target.0.join(std::str::from_utf8(TOKEN).unwrap());
        std::os::unix::fs::symlink(&link_to, d.0.join("dangling")).unwrap();
        let r = scan_profile(&d.0, &[TOKEN]);
        assert!(r.hits.iter().any(|h| h.place == Place::LinkTarget), "{r}");
    }

    /// A mozLz4 file whose token is only whole once decompressed: its first
    /// 4 bytes are a back-reference to the same 4 bytes earlier in the file.
    #[test]
    fn a_token_split_by_lz4_is_found_in_the_decompressed_contents() {
        let token: &[u8] = b"abcd_live_Zk81mQ";
        let mut block = vec![0x80]; // 8 literals, a match of 4 + 0
        block.extend_from_slice(b"xxabcd--");
        block.extend_from_slice(&6u16.to_le_bytes()); // back to "abcd"
        block.push(0xc0); // the last sequence: 12 literals
        block.extend_from_slice(&token[4..]);
        let mut file = MOZ_LZ4_MAGIC.to_vec();
        file.extend_from_slice(&24u32.to_le_bytes());
        file.extend_from_slice(&block);
        assert_eq!(moz_lz4(&file).unwrap(), b"xxabcd--abcd_live_Zk81mQ");

        let d = TempDir::new("lz4");
        d.write("extension-dnr/uuid.json.lz4", &file);
        let r = scan_profile(&d.0, &[token]);
        assert_eq!(r.count(0), 1, "{r}");
        assert_eq!(r.hits[0].place, Place::Decompressed);
        assert_eq!(r.decompressed, 1);
        assert!(r.errors.is_empty(), "{r}");
    }

    #[test]
    fn lz4_matches_may_overlap_themselves_and_bad_blocks_are_errors() {
        // "ab" then a match of 6 at offset 2: "abababab".
        let block = [0x22, b'a', b'b', 2, 0, 0x00];
        assert_eq!(lz4_block(&block, 8).unwrap(), b"abababab");
        assert!(lz4_block(&block, 7).is_err(), "longer than stated");
        assert!(
            lz4_block(&[0x22, b'a', b'b', 3, 0, 0x00], 8).is_err(),
            "offset too far"
        );
        assert!(lz4_block(&[0x50, b'a'], 5).is_err(), "truncated literals");

        let d = TempDir::new("badlz4");
        let mut file = MOZ_LZ4_MAGIC.to_vec();
        file.extend_from_slice(&[9, 0, 0, 0, 0xff]);
        d.write("sessionstore.jsonlz4", &file);
        let r = scan_profile(&d.0, &[TOKEN]);
        assert_eq!(r.errors.len(), 1, "{r}");
    }

    #[test]
    #[should_panic(expected = "needs at least")]
    fn short_needles_are_refused() {
        let d = TempDir::new("short");
        scan_profile(&d.0, &[b"abc"]);
    }
}

//! Just enough ZIP (APPNOTE 6.3) for bags: stored entries (no compression), UTF-8
//! names, one fixed timestamp, entries in the order given. The same files give the
//! same bytes, which a general-purpose zip library does not promise. Bags hold
//! bundles and other files that are compressed already, so storing costs little.
//!
//! The reader reads back what the writer writes (for `capsule audit`), nothing more.

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
/// 1980-01-01 00:00:00, the first moment MS-DOS time can say.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Bit 11: names are UTF-8.
const FLAGS: u16 = 1 << 11;

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Writes `entries` (name, bytes, executable) as one zip archive.
pub fn write(entries: &[(String, &[u8], bool)]) -> Result<Vec<u8>, String> {
    let too_big = || {
        "the bag is too large for a zip without ZIP64 (over 4 GiB or 65,535 files): export it as a folder".to_string()
    };
    if entries.len() > u16::MAX as usize {
        return Err(too_big());
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, bytes, executable) in entries {
        let offset = u32::try_from(out.len()).map_err(|_| too_big())?;
        let size = u32::try_from(bytes.len()).map_err(|_| too_big())?;
        let crc = crc32fast::hash(bytes);
        let name_len = u16::try_from(name.len()).map_err(|_| too_big())?;
        u32le(&mut out, LOCAL);
        u16le(&mut out, 20);
        u16le(&mut out, FLAGS);
        u16le(&mut out, 0);
        u16le(&mut out, DOS_TIME);
        u16le(&mut out, DOS_DATE);
        u32le(&mut out, crc);
        u32le(&mut out, size);
        u32le(&mut out, size);
        u16le(&mut out, name_len);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);

        u32le(&mut central, CENTRAL);
        // Made by: Unix (3), spec 2.0, so the mode in the external attributes counts.
        u16le(&mut central, (3 << 8) | 20);
        u16le(&mut central, 20);
        u16le(&mut central, FLAGS);
        u16le(&mut central, 0);
        u16le(&mut central, DOS_TIME);
        u16le(&mut central, DOS_DATE);
        u32le(&mut central, crc);
        u32le(&mut central, size);
        u32le(&mut central, size);
        u16le(&mut central, name_len);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        let mode: u32 = if *executable { 0o100755 } else { 0o100644 };
        u32le(&mut central, mode << 16);
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    let central_size = u32::try_from(central.len()).map_err(|_| too_big())?;
    out.extend_from_slice(&central);
    u32le(&mut out, END);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, central_size);
    u32le(&mut out, central_offset);
    u16le(&mut out, 0);
    Ok(out)
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a zip written by [`write`]: every entry's name and bytes, with each entry's
/// CRC-32 checked.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bad = |what: &str| format!("not a zip capsule wrote, or damaged: {what}");
    let end = bytes
        .len()
        .checked_sub(22)
        .filter(|at| read_u32(bytes, *at) == Some(END))
        .ok_or_else(|| bad("no end of central directory"))?;
    let count = read_u16(bytes, end + 10).ok_or_else(|| bad("end record"))? as usize;
    let mut at = read_u32(bytes, end + 16).ok_or_else(|| bad("end record"))? as usize;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if read_u32(bytes, at) != Some(CENTRAL) {
            return Err(bad("central directory"));
        }
        let method = read_u16(bytes, at + 10).ok_or_else(|| bad("entry"))?;
        let crc = read_u32(bytes, at + 16).ok_or_else(|| bad("entry"))?;
        let size = read_u32(bytes, at + 20).ok_or_else(|| bad("entry"))? as usize;
        let name_len = read_u16(bytes, at + 28).ok_or_else(|| bad("entry"))? as usize;
        let extra = read_u16(bytes, at + 30).ok_or_else(|| bad("entry"))? as usize;
        let comment = read_u16(bytes, at + 32).ok_or_else(|| bad("entry"))? as usize;
        let local = read_u32(bytes, at + 42).ok_or_else(|| bad("entry"))? as usize;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("entry name"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("entry name"))?;
        if method != 0 {
            return Err(bad(&format!("{name} is compressed")));
        }
        if read_u32(bytes, local) != Some(LOCAL) {
            return Err(bad(&format!("local header of {name}")));
        }
        let local_name = read_u16(bytes, local + 26).ok_or_else(|| bad("local header"))? as usize;
        let local_extra = read_u16(bytes, local + 28).ok_or_else(|| bad("local header"))? as usize;
        let start = local + 30 + local_name + local_extra;
        let data = bytes
            .get(start..start + size)
            .ok_or_else(|| bad(&format!("{name} is cut short")))?;
        if crc32fast::hash(data) != crc {
            return Err(format!(
                "{name}: its CRC-32 does not match (the zip is damaged)"
            ));
        }
        entries.push((name, data.to_vec()));
        at += 46 + name_len + extra + comment;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_read_back_and_repeat() {
        let entries = vec![
            ("b/a.txt".to_string(), &b"hello"[..], false),
            ("b/run.sh".to_string(), &b"#!/bin/sh\n"[..], true),
        ];
        let one = write(&entries).unwrap();
        assert_eq!(one, write(&entries).unwrap());
        let back = read(&one).unwrap();
        assert_eq!(back[0], ("b/a.txt".to_string(), b"hello".to_vec()));
        let mut broken = one.clone();
        broken[40] ^= 1;
        assert!(read(&broken).unwrap_err().contains("CRC"));
    }
}

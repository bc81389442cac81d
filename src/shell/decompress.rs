//! Decompression of modules and symvers files, chosen by magic bytes rather than file names
//! (docs/compat-rules.md, "Compressed and signed files"): a `.ko` renamed without its `.xz`, or
//! a `symvers.gz` that is plain text, still reads correctly.

use std::fmt;
use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use liblzma::stream::{CONCATENATED, Stream};

/// Upper bound on decompressed output. The largest real inputs (a debug-info `.ko`, a
/// symvers) are tens of MB, so hitting this means a corrupt or hostile file.
pub const MAX_DECOMPRESSED_SIZE: usize = 1 << 30;

/// liblzma refuses streams whose decoder would need more memory than this. `xz -9` needs
/// 65 MiB to decode.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];

/// libzstd refuses frames whose window is larger (2^27 = 128 MiB, its own default); `zstd -19`
/// uses 8 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
    None,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "uncompressed",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("{format} data is corrupt: {reason}")]
    Corrupt { format: Compression, reason: String },
    #[error("{format} data is truncated")]
    Truncated { format: Compression },
    #[error("{format} data expands beyond the {limit}-byte limit")]
    TooLarge { format: Compression, limit: usize },
}

pub fn compression_of(bytes: &[u8]) -> Compression {
    if bytes.starts_with(XZ_MAGIC) {
        Compression::Xz
    } else if bytes.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else if bytes.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Decompresses xz, zstd or gzip data (all streams/frames/members, each checked against its
/// checksum), or returns anything else unchanged.
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, DecompressError> {
    decompress_with_limit(bytes, MAX_DECOMPRESSED_SIZE)
}

/// [`decompress`] with a caller-chosen output cap, which also applies to plain input.
pub fn decompress_with_limit(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match compression_of(bytes) {
        Compression::Xz => decompress_xz(bytes, limit),
        Compression::Zstd => decompress_zstd(bytes, limit),
        Compression::Gzip => decompress_gzip(bytes, limit),
        Compression::None if bytes.len() > limit => Err(DecompressError::TooLarge {
            format: Compression::None,
            limit,
        }),
        Compression::None => Ok(bytes.to_vec()),
    }
}

fn decompress_xz(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    // CONCATENATED: keep going after the first stream, as `xz -d` does.
    let stream = Stream::new_stream_decoder(XZ_MEMORY_LIMIT, CONCATENATED)
        .map_err(|err| corrupt(Compression::Xz, err))?;
    read_capped(
        liblzma::read::XzDecoder::new_stream(bytes, stream),
        bytes.len(),
        limit,
        Compression::Xz,
    )
}

/// Every frame, skippable ones skipped, each checked against its content checksum; frames
/// whose window needs more than `ZSTD_WINDOW_LOG_MAX` are refused.
fn decompress_zstd(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(bytes)
        .map_err(|err| corrupt(Compression::Zstd, err))?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(|err| corrupt(Compression::Zstd, err))?;
    read_capped(decoder, bytes.len(), limit, Compression::Zstd)
}

/// Every member, as `gzip -d` reads concatenated ones. Inflated straight into the output's
/// spare room: through `Read`, every byte of a symvers was zeroed before being written (a
/// sixth of the CPU of a run offering one module to 8 kernels).
fn decompress_gzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let format = Compression::Gzip;
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = limit.saturating_add(1);
    let mut output = Vec::with_capacity(gzip_size_hint(bytes).min(cap));
    let mut input = bytes;
    loop {
        let mut inflate = Decompress::new_gzip(15);
        loop {
            if output.len() == output.capacity() {
                let room = output.capacity().max(64 << 10).min(cap - output.len());
                output.reserve_exact(room);
            }
            let (read_before, written_before) = (inflate.total_in(), output.len());
            let status = inflate
                .decompress_vec(input, &mut output, FlushDecompress::None)
                .map_err(|err| corrupt(format, err))?;
            let read = usize::try_from(inflate.total_in() - read_before).unwrap_or(usize::MAX);
            input = input.get(read..).unwrap_or_default();
            if output.len() >= cap {
                return Err(DecompressError::TooLarge { format, limit });
            }
            match status {
                Status::StreamEnd => break,
                _ if read > 0 || output.len() > written_before => {}
                _ if input.is_empty() => return Err(DecompressError::Truncated { format }),
                _ => return Err(corrupt(format, "inflate makes no progress")),
            }
        }
        if input.is_empty() {
            return Ok(output);
        }
    }
}

/// What a gzip file says it expands to: its last member's size modulo 2^32 (the ISIZE
/// trailer), which for a single-member file under 4 GiB is the size. Only a hint for the
/// output buffer, held to what deflate can reach (1032:1) so that a lying trailer cannot
/// reserve more than the data could fill; a larger output still grows the buffer.
fn gzip_size_hint(bytes: &[u8]) -> usize {
    const DEFLATE_MAX_RATIO: usize = 1032;
    let trailer: Option<[u8; 4]> = bytes
        .len()
        .checked_sub(4)
        .and_then(|start| bytes.get(start..))
        .and_then(|raw| raw.try_into().ok());
    let declared = trailer.map_or(0, |raw| u32::from_le_bytes(raw) as usize);
    declared.min(bytes.len().saturating_mul(DEFLATE_MAX_RATIO))
}

/// Everything `decoder` gives, refused past `limit` bytes.
fn read_capped(
    decoder: impl Read,
    compressed_len: usize,
    limit: usize,
    format: Compression,
) -> Result<Vec<u8>, DecompressError> {
    // Room for a typical 4:1 ratio, without trusting the input enough to allocate the cap.
    let output = Vec::with_capacity(compressed_len.saturating_mul(4).min(limit));
    read_capped_into(decoder, output, limit, format)
}

/// [`read_capped`] into `output`, whose capacity is a guess of the size.
fn read_capped_into(
    decoder: impl Read,
    mut output: Vec<u8>,
    limit: usize,
    format: Compression,
) -> Result<Vec<u8>, DecompressError> {
    // One byte past the limit tells "exactly at the limit" from "over it".
    let read_cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(read_cap)
        .read_to_end(&mut output)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => DecompressError::Truncated { format },
            _ if is_truncation(format, &err) => DecompressError::Truncated { format },
            _ => corrupt(format, err),
        })?;
    if output.len() > limit {
        return Err(DecompressError::TooLarge { format, limit });
    }
    Ok(output)
}

/// libzstd says an input that ends inside a frame is "incomplete".
fn is_truncation(format: Compression, err: &std::io::Error) -> bool {
    format == Compression::Zstd && err.to_string().contains("incomplete")
}

fn corrupt(format: Compression, reason: impl fmt::Display) -> DecompressError {
    DecompressError::Corrupt {
        format,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Text that compresses well but is not trivially repetitive.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"0123456789abcdef\tvmlinux\n"[(i * 7 + i / 13) % 25])
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let stream = Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32).unwrap();
        let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// With a content checksum, as `zstd` writes by default.
    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    type Encoder = fn(&[u8]) -> Vec<u8>;

    fn encoders() -> [(Compression, Encoder); 3] {
        [
            (Compression::Xz, xz),
            (Compression::Zstd, zstd),
            (Compression::Gzip, gzip),
        ]
    }

    #[test]
    fn detects_format_by_magic() {
        assert_eq!(compression_of(&xz(b"x")), Compression::Xz);
        assert_eq!(compression_of(&zstd(b"x")), Compression::Zstd);
        assert_eq!(compression_of(&gzip(b"x")), Compression::Gzip);
        assert_eq!(compression_of(b"\x7fELF\x02\x01"), Compression::None);
        assert_eq!(compression_of(b""), Compression::None);
        assert_eq!(compression_of(&[0x1F]), Compression::None);
        assert_eq!(compression_of(&XZ_MAGIC[..5]), Compression::None);
    }

    #[test]
    fn round_trips_every_format() {
        let data = sample(300_000);
        for (format, encode) in encoders() {
            let packed = encode(&data);
            assert!(packed.len() < data.len(), "{format} did not compress");
            assert_eq!(decompress(&packed).unwrap(), data, "{format}");
        }
    }

    #[test]
    fn round_trips_empty_payload() {
        for (format, encode) in encoders() {
            assert_eq!(decompress(&encode(b"")).unwrap(), b"", "{format}");
        }
    }

    #[test]
    fn plain_input_is_returned_unchanged() {
        let data = b"0x00000001\tsym\tvmlinux\tEXPORT_SYMBOL\t\n";
        assert_eq!(decompress(data).unwrap(), data);
        assert_eq!(decompress(b"").unwrap(), b"");
    }

    #[test]
    fn concatenated_streams_are_all_decoded() {
        for (format, encode) in encoders() {
            let mut packed = encode(b"first part, ");
            packed.extend(encode(b"second part"));
            assert_eq!(
                decompress(&packed).unwrap(),
                b"first part, second part",
                "{format}"
            );
        }
    }

    #[test]
    fn zstd_skippable_frames_are_skipped() {
        let mut packed = vec![0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3];
        packed.extend(zstd(b"payload"));
        packed.extend([0x5F, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]);
        // Starts with a skippable frame, so the magic check does not see zstd; call directly.
        assert_eq!(decompress_zstd(&packed, 100).unwrap(), b"payload");
        let mut zstd_first = zstd(b"payload");
        zstd_first.extend([0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 9, 9]);
        assert_eq!(decompress(&zstd_first).unwrap(), b"payload");
    }

    #[test]
    fn truncated_streams_are_errors() {
        let data = sample(100_000);
        for (format, encode) in encoders() {
            let packed = encode(&data);
            for cut in [packed.len() - 1, packed.len() / 2, 12] {
                let err = decompress(&packed[..cut]).unwrap_err();
                assert!(
                    matches!(
                        err,
                        DecompressError::Truncated { format: f } | DecompressError::Corrupt { format: f, .. }
                            if f == format
                    ),
                    "{format} cut at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn truncation_at_the_end_says_truncated() {
        let data = sample(100_000);
        for (format, encode) in encoders() {
            let packed = encode(&data);
            let err = decompress(&packed[..packed.len() - 1]).unwrap_err();
            assert!(
                matches!(err, DecompressError::Truncated { .. }),
                "{format}: {err}"
            );
            assert_eq!(err.to_string(), format!("{format} data is truncated"));
        }
    }

    #[test]
    fn corrupted_checksums_are_caught() {
        let data = sample(50_000);
        for (format, encode) in encoders() {
            let mut packed = encode(&data);
            // gzip: CRC32 then ISIZE end the member; xz: the stream footer follows the
            // index, so corrupt inside the compressed block instead.
            let position = match format {
                Compression::Gzip => packed.len() - 8,
                _ => packed.len() / 2,
            };
            packed[position] ^= 0x55;
            let err = decompress(&packed).unwrap_err();
            assert!(
                matches!(err, DecompressError::Corrupt { format: f, .. } if f == format),
                "{format}: {err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("{format} data is corrupt: "))
            );
        }
    }

    #[test]
    fn zstd_content_checksum_mismatch_is_caught() {
        let packed = zstd(b"checksummed payload");
        let descriptor = packed[4];
        assert_ne!(descriptor & 0x04, 0, "the frame carries a content checksum");
        let mut bad = packed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        let err = decompress(&bad).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        for (format, encode) in encoders() {
            let mut packed = encode(b"payload");
            packed.extend_from_slice(b"trailing garbage, long enough for a header");
            let err = decompress(&packed).unwrap_err();
            assert!(
                matches!(err, DecompressError::Corrupt { format: f, .. } if f == format),
                "{format}: {err}"
            );
            // Too short to be a header: xz reads it as a cut-off next stream.
            packed.truncate(packed.len() - 34);
            assert!(decompress(&packed).is_err(), "{format}");
        }
    }

    #[test]
    fn output_over_the_limit_is_refused() {
        let data = vec![0u8; 200_000];
        for (format, encode) in encoders() {
            let packed = encode(&data);
            let err = decompress_with_limit(&packed, 100_000).unwrap_err();
            assert!(
                matches!(err, DecompressError::TooLarge { format: f, limit: 100_000 } if f == format),
                "{format}: {err}"
            );
        }
        let err = decompress_with_limit(&data, 100).unwrap_err();
        assert!(matches!(
            err,
            DecompressError::TooLarge {
                format: Compression::None,
                ..
            }
        ));
    }

    #[test]
    fn output_exactly_at_the_limit_is_accepted() {
        let data = sample(70_000);
        for (format, encode) in encoders() {
            let packed = encode(&data);
            let out = decompress_with_limit(&packed, data.len()).unwrap();
            assert_eq!(out.len(), data.len(), "{format}");
        }
        assert_eq!(decompress_with_limit(&data, data.len()).unwrap(), data);
    }

    #[test]
    fn magic_alone_is_an_error_not_a_panic() {
        for magic in [XZ_MAGIC, ZSTD_MAGIC, GZIP_MAGIC] {
            assert!(decompress(magic).is_err(), "{magic:02x?}");
        }
    }

    #[test]
    fn garbage_after_magic_never_panics() {
        let mut seed = 0x2545_f491_u32;
        for magic in [XZ_MAGIC, ZSTD_MAGIC, GZIP_MAGIC] {
            for len in [0usize, 1, 7, 40, 300, 5000] {
                let mut bytes = magic.to_vec();
                bytes.extend((0..len).map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                }));
                let _ = decompress_with_limit(&bytes, 1 << 20);
            }
        }
    }

    #[test]
    fn the_gzip_size_hint_is_the_trailer_held_to_what_deflate_reaches() {
        let data = sample(100_000);
        assert_eq!(gzip_size_hint(&gzip(&data)), data.len());
        let mut lying = gzip(b"abc");
        let len = lying.len();
        lying[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_size_hint(&lying), len * 1032);
        assert_eq!(decompress(&lying).map_err(|err| err.to_string()).ok(), None);
        assert_eq!(gzip_size_hint(b"\x1f\x8b"), 0);
    }
}

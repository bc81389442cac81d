//! The appended module signature (`scripts/sign-file` format): split it off so that only the
//! ELF part is parsed and section offsets are checked against the ELF's real length.
//!
//! Layout at the end of a signed file: `[ELF][PKCS#7, sig_len bytes][module_signature, 12
//! bytes][magic, 28 bytes]`.

use thiserror::Error;

/// The ASCII marker every signed module ends with.
pub const SIGNATURE_MAGIC: &[u8; 28] = b"~Module signature appended~\n";

/// Size of `struct module_signature`, the fixed header right before the magic.
const SIGNATURE_HEADER_LEN: usize = 12;

/// `id_type` of a PKCS#7 signature, the only kind current kernels accept.
pub const ID_TYPE_PKCS7: u8 = 2;

/// What the fixed signature header says; the signature bytes themselves are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureInfo {
    pub algo: u8,
    pub hash: u8,
    pub id_type: u8,
    pub signer_len: u8,
    pub key_id_len: u8,
    /// Length of the PKCS#7 blob that precedes the header.
    pub sig_len: u32,
}

impl SignatureInfo {
    pub fn is_pkcs7(&self) -> bool {
        self.id_type == ID_TYPE_PKCS7
    }
}

/// A module file cut in two: the ELF image and what the trailer said, if there was one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitModule<'a> {
    pub elf: &'a [u8],
    pub signature: Option<SignatureInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("signature trailer is cut short: {len} bytes before the magic, header needs 12")]
    HeaderTruncated { len: usize },
    #[error("signature claims {sig_len} bytes but only {available} precede its header")]
    SignatureTooLong { sig_len: u32, available: usize },
}

/// The most bytes at the end of a file that [`split_signature_tail`] looks at: the fixed
/// header and the magic.
pub const TRAILER_LEN: usize = SIGNATURE_HEADER_LEN + SIGNATURE_MAGIC.len();

/// Splits an appended signature off `bytes`. Files without the magic are returned whole.
pub fn split_signature(bytes: &[u8]) -> Result<SplitModule<'_>, SignatureError> {
    let tail = &bytes[bytes.len().saturating_sub(TRAILER_LEN)..];
    let (elf_len, signature) = split_signature_tail(tail, bytes.len() as u64)?;
    // elf_len <= bytes.len(), so the slice is whole.
    let elf_len = usize::try_from(elf_len).unwrap_or(bytes.len());
    Ok(SplitModule {
        elf: bytes.get(..elf_len).unwrap_or(bytes),
        signature,
    })
}

/// [`split_signature`] for a file that is not in memory: `tail` is its last
/// `min(file_len, TRAILER_LEN)` bytes. Returns the length of the ELF part and what the
/// trailer said.
pub fn split_signature_tail(
    tail: &[u8],
    file_len: u64,
) -> Result<(u64, Option<SignatureInfo>), SignatureError> {
    let Some(before_magic) = tail.strip_suffix(SIGNATURE_MAGIC.as_slice()) else {
        return Ok((file_len, None));
    };
    let magic_start = file_len - SIGNATURE_MAGIC.len() as u64;
    let header_start = magic_start.checked_sub(SIGNATURE_HEADER_LEN as u64).ok_or(
        SignatureError::HeaderTruncated {
            len: usize::try_from(magic_start).unwrap_or(usize::MAX),
        },
    )?;
    let header = before_magic
        .get(before_magic.len().saturating_sub(SIGNATURE_HEADER_LEN)..)
        .unwrap_or_default();
    let info = decode_header(header)?;
    let elf_len = header_start.checked_sub(u64::from(info.sig_len)).ok_or(
        SignatureError::SignatureTooLong {
            sig_len: info.sig_len,
            available: usize::try_from(header_start).unwrap_or(usize::MAX),
        },
    )?;
    Ok((elf_len, Some(info)))
}

fn decode_header(header: &[u8]) -> Result<SignatureInfo, SignatureError> {
    let truncated = SignatureError::HeaderTruncated { len: header.len() };
    let fixed: &[u8; SIGNATURE_HEADER_LEN] = header.try_into().map_err(|_| truncated)?;
    let [
        algo,
        hash,
        id_type,
        signer_len,
        key_id_len,
        _,
        _,
        _,
        l0,
        l1,
        l2,
        l3,
    ] = *fixed;
    Ok(SignatureInfo {
        algo,
        hash,
        id_type,
        signer_len,
        key_id_len,
        sig_len: u32::from_be_bytes([l0, l1, l2, l3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(id_type: u8, sig_len: u32) -> Vec<u8> {
        let mut out = vec![0, 0, id_type, 0, 0, 0, 0, 0];
        out.extend_from_slice(&sig_len.to_be_bytes());
        out.extend_from_slice(SIGNATURE_MAGIC);
        out
    }

    fn signed(elf: &[u8], sig: &[u8]) -> Vec<u8> {
        let mut file = elf.to_vec();
        file.extend_from_slice(sig);
        let sig_len = u32::try_from(sig.len()).expect("small test signature");
        file.extend(trailer(ID_TYPE_PKCS7, sig_len));
        file
    }

    #[test]
    fn unsigned_file_is_returned_whole() {
        let split = split_signature(b"\x7fELF rest").expect("no trailer is fine");
        assert_eq!(split.elf, b"\x7fELF rest");
        assert_eq!(split.signature, None);
    }

    #[test]
    fn signed_file_is_split_at_the_signature() {
        let file = signed(b"\x7fELF body", &[0xAA; 5]);
        let split = split_signature(&file).expect("valid trailer");
        assert_eq!(split.elf, b"\x7fELF body");
        let info = split.signature.expect("signature present");
        assert_eq!(info.sig_len, 5);
        assert!(info.is_pkcs7());
    }

    #[test]
    fn sig_len_is_big_endian() {
        let sig = vec![0x55; 0x0102];
        let file = signed(b"ELF", &sig);
        let info = split_signature(&file)
            .expect("valid")
            .signature
            .expect("present");
        assert_eq!(info.sig_len, 0x0102);
    }

    #[test]
    fn empty_elf_part_with_exact_signature_is_accepted() {
        let file = signed(b"", &[1, 2, 3]);
        let split = split_signature(&file).expect("lengths fit exactly");
        assert!(split.elf.is_empty());
    }

    #[test]
    fn magic_alone_is_a_truncated_header() {
        let err = split_signature(SIGNATURE_MAGIC).expect_err("no header");
        assert_eq!(err, SignatureError::HeaderTruncated { len: 0 });
    }

    #[test]
    fn header_shorter_than_twelve_bytes_is_rejected() {
        let mut file = vec![0u8; 7];
        file.extend_from_slice(SIGNATURE_MAGIC);
        assert_eq!(
            split_signature(&file),
            Err(SignatureError::HeaderTruncated { len: 7 })
        );
    }

    #[test]
    fn sig_len_longer_than_the_file_is_rejected() {
        let mut file = b"ELF".to_vec();
        file.extend(trailer(ID_TYPE_PKCS7, 4));
        assert_eq!(
            split_signature(&file),
            Err(SignatureError::SignatureTooLong {
                sig_len: 4,
                available: 3
            })
        );
    }

    #[test]
    fn huge_sig_len_does_not_overflow() {
        let file = trailer(ID_TYPE_PKCS7, u32::MAX);
        assert!(matches!(
            split_signature(&file),
            Err(SignatureError::SignatureTooLong { .. })
        ));
    }

    #[test]
    fn non_pkcs7_id_type_is_reported_not_rejected() {
        let mut file = b"ELF".to_vec();
        file.extend(trailer(1, 0));
        let info = split_signature(&file)
            .expect("parsed")
            .signature
            .expect("present");
        assert!(!info.is_pkcs7());
    }
}

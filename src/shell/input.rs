//! Module paths on standard input, one a line, read as bytes with every read bounded: a bad
//! line costs that line only, and is named by its number.

use std::io::{self, BufRead};

/// PATH_MAX: no path the kernel can open is longer.
pub const LINE_LIMIT: usize = 4096;
/// Far beyond any package's module list.
pub const INPUT_LIMIT: usize = 64 << 20;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("<stdin> line {line}: longer than {LINE_LIMIT} bytes, skipped")]
    TooLong { line: usize },
    #[error("<stdin> line {line}: not valid UTF-8, skipped")]
    NotUtf8 { line: usize },
    #[error("<stdin> line {line}: contains a NUL byte, skipped")]
    Nul { line: usize },
    #[error("<stdin>: more than {} MiB, the rest is ignored", INPUT_LIMIT >> 20)]
    TooMuch,
    #[error("<stdin>: {0}")]
    Io(String),
}

/// A non-blank line of input, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub struct InputLine {
    pub number: usize,
    pub text: String,
}

/// Every usable line, and one problem per unusable one.
pub fn read_lines(mut input: impl BufRead) -> (Vec<InputLine>, Vec<InputError>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut total = 0usize;
    let mut number = 0usize;
    loop {
        number += 1;
        let (bytes, overlong) = match read_line(&mut input, &mut total) {
            Ok(Some(read)) => read,
            Ok(None) => break,
            Err(ReadStop::TooMuch) => {
                problems.push(InputError::TooMuch);
                break;
            }
            Err(ReadStop::Io(err)) => {
                problems.push(InputError::Io(err.to_string()));
                break;
            }
        };
        if overlong {
            problems.push(InputError::TooLong { line: number });
            continue;
        }
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        if bytes.contains(&0) {
            problems.push(InputError::Nul { line: number });
            continue;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => lines.push(InputLine {
                number,
                text: text.to_owned(),
            }),
            Err(_) => problems.push(InputError::NotUtf8 { line: number }),
        }
    }
    (lines, problems)
}

enum ReadStop {
    TooMuch,
    Io(io::Error),
}

/// The next line (at most `LINE_LIMIT` bytes kept; the rest of a longer one is consumed and
/// dropped), or `None` at the end of input.
fn read_line(
    input: &mut impl BufRead,
    total: &mut usize,
) -> Result<Option<(Vec<u8>, bool)>, ReadStop> {
    let mut kept = Vec::new();
    let mut overlong = false;
    let mut saw_any = false;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ReadStop::Io(err)),
        };
        if buffer.is_empty() {
            return Ok(saw_any.then_some((kept, overlong)));
        }
        saw_any = true;
        let newline = buffer.iter().position(|&byte| byte == b'\n');
        let chunk = &buffer[..newline.unwrap_or(buffer.len())];
        if kept.len() + chunk.len() > LINE_LIMIT {
            overlong = true;
            kept.clear();
        } else if !overlong {
            kept.extend_from_slice(chunk);
        }
        let used = newline.map_or(buffer.len(), |at| at + 1);
        input.consume(used);
        *total += used;
        if *total > INPUT_LIMIT {
            return Err(ReadStop::TooMuch);
        }
        if newline.is_some() {
            return Ok(Some((kept, overlong)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[InputLine]) -> Vec<(usize, &str)> {
        lines.iter().map(|l| (l.number, l.text.as_str())).collect()
    }

    #[test]
    fn bad_lines_cost_only_themselves_and_are_named() {
        let mut input = b"/a.ko\r\n\n  \n/b\xff.ko\n/c\0.ko\n".to_vec();
        input.extend(vec![b'x'; LINE_LIMIT + 1]);
        input.extend(b"\n/d.ko");
        let (lines, problems) = read_lines(&input[..]);
        assert_eq!(texts(&lines), [(1, "/a.ko"), (7, "/d.ko")]);
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "<stdin> line 4: not valid UTF-8, skipped",
                "<stdin> line 5: contains a NUL byte, skipped",
                "<stdin> line 6: longer than 4096 bytes, skipped",
            ]
        );
    }

    #[test]
    fn an_endless_line_is_consumed_without_keeping_it() {
        let endless =
            io::BufReader::with_capacity(1 << 16, io::repeat(b'x').take(INPUT_LIMIT as u64 + 10));
        let (lines, problems) = read_lines(endless);
        assert!(lines.is_empty());
        assert_eq!(problems, [InputError::TooMuch]);
    }

    use std::io::Read;
}

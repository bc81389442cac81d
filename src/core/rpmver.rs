//! rpm's version order (`rpmvercmp`), used to pick the newest build of a module by the kernel
//! release it was built for: `5.14.0-162.el9` is newer than `5.14.0-70.el9`.

use std::cmp::Ordering;

/// Compares two version strings the way rpm does: runs of digits compare as numbers, runs of
/// letters as text, a digit run beats a letter run, other characters only separate, `~` sorts
/// before everything (even the end of the string) and `^` after the end but before more
/// segments.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(_), Some(_)) => {}
        }
        let numeric = a[0].is_ascii_digit();
        let (segment_a, rest_a) = split_segment(a, numeric);
        let (segment_b, rest_b) = split_segment(b, numeric);
        if segment_b.is_empty() {
            // A number against letters: the number is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            compare_numbers(segment_a, segment_b)
        } else {
            segment_a.cmp(segment_b)
        };
        if order != Ordering::Equal {
            return order;
        }
        a = rest_a;
        b = rest_b;
    }
}

fn skip_separators(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| c.is_ascii_alphanumeric() || *c == b'~' || *c == b'^')
        .unwrap_or(s.len());
    &s[start..]
}

fn split_segment(s: &[u8], numeric: bool) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| {
            if numeric {
                !c.is_ascii_digit()
            } else {
                !c.is_ascii_alphabetic()
            }
        })
        .unwrap_or(s.len());
    s.split_at(end)
}

fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().position(|c| *c != b'0').unwrap_or(s.len()) };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn kernel_releases_order_numerically() {
        assert_eq!(compare("5.14.0-162.el9", "5.14.0-70.el9"), Greater);
        assert_eq!(compare("6.1.0-56-amd64", "6.1.0-55-amd64"), Greater);
        assert_eq!(compare("6.12.117+deb12-amd64", "6.1.0-56-amd64"), Greater);
        assert_eq!(
            compare(
                "4.19.90-89.21.v2401.ky10.x86_64",
                "4.19.90-89.11.v2401.ky10.x86_64"
            ),
            Greater
        );
        assert_eq!(compare("6.1.0-50-amd64", "6.1.0-50-amd64"), Equal);
    }

    #[test]
    fn rpm_corner_cases() {
        assert_eq!(compare("1.0", "1.0.1"), Less);
        assert_eq!(compare("1.0a", "1.0"), Greater);
        assert_eq!(compare("1.01", "1.1"), Equal);
        assert_eq!(compare("1.0~rc1", "1.0"), Less);
        assert_eq!(compare("1.0^git1", "1.0"), Greater);
        assert_eq!(compare("1.0^git1", "1.0.1"), Less);
        assert_eq!(compare("2.a", "2.1"), Less);
        assert_eq!(compare("abc", "abd"), Less);
        assert_eq!(compare("", ""), Equal);
    }
}

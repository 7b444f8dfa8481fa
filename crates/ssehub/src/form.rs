//! `application/x-www-form-urlencoded` decoding for publish bodies and query strings, strict
//! about UTF-8: a pair that does not decode to valid UTF-8 is an error, never replaced.

use std::fmt;

use percent_encoding::percent_decode;

/// A name or value was not valid UTF-8 once decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The name of the pair at fault, as far as it decoded.
    pub name: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "form field {:?} is not valid UTF-8", self.name)
    }
}

/// Decodes `a=1&b=2&a=3` into pairs, in order. Empty segments are skipped; `+` is a space.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|b| *b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = match segment.iter().position(|b| *b == b'=') {
                Some(i) => (&segment[..i], &segment[i + 1..]),
                None => (segment, &b""[..]),
            };
            let name = decode(name).map_err(|_| FormError {
                name: String::from_utf8_lossy(name).into_owned(),
            })?;
            let value = decode(value).map_err(|_| FormError { name: name.clone() })?;
            Ok((name, value))
        })
        .collect()
}

fn decode(raw: &[u8]) -> Result<String, std::str::Utf8Error> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1", &[("a", "1")]),
            ("topic=a&topic=b", &[("topic", "a"), ("topic", "b")]),
            ("data=hello+world%21", &[("data", "hello world!")]),
            ("flag&x=", &[("flag", ""), ("x", "")]),
            ("a=%E2%9C%94&&b=c=d", &[("a", "✔"), ("b", "c=d")]),
        ];
        for (input, want) in ok {
            let got = parse(input.as_bytes()).unwrap();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(got, want, "{input:?}");
        }
        assert_eq!(parse(b"data=%FF").unwrap_err().name, "data");
        assert!(parse(b"%C3=1").is_err());
        assert!(parse(b"a=\xff").is_err());
    }
}

/// Fuzzing the query and form parser: never panics; encoded pairs decode to themselves.
#[cfg(test)]
mod fuzz {
    use super::*;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&input);
        }

        #[test]
        fn round_trips(pairs in proptest::collection::vec((".+", ".*"), 0..6)) {
            let encoded: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC)))
                .collect();
            let decoded = parse(encoded.join("&").as_bytes()).unwrap();
            prop_assert_eq!(decoded, pairs);
        }
    }
}

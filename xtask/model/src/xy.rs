//! `X.Y`: the one two-part version type (glibc 2.28, macOS 14.0, Python 3.12, CUDA 12.8,
//! a Docker client's 28.2). Parsed once here; a third part (`3.12.1`) is read past.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xy {
    pub major: u32,
    pub minor: u32,
}

impl Xy {
    pub const fn new(major: u32, minor: u32) -> Xy {
        Xy { major, minor }
    }

    /// `2.28` → 2.28; `13` → 13.0; `3.12.1` → 3.12. Anything else (a word, `3.x`, an
    /// empty part) is None.
    pub fn parse(s: &str) -> Option<Xy> {
        let mut parts = s.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = match parts.next() {
            None => 0,
            Some(m) => m.parse().ok()?,
        };
        Some(Xy { major, minor })
    }

    pub fn pair(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl From<(u32, u32)> for Xy {
    fn from((major, minor): (u32, u32)) -> Xy {
        Xy { major, minor }
    }
}

impl fmt::Display for Xy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_parts_one_or_three_read_as_x_y() {
        assert_eq!(Xy::parse("2.28"), Some(Xy::new(2, 28)));
        assert_eq!(Xy::parse("13"), Some(Xy::new(13, 0)));
        assert_eq!(Xy::parse("3.12.1"), Some(Xy::new(3, 12)));
        assert_eq!(Xy::parse(" 12.8\n"), Some(Xy::new(12, 8)));
        for bad in ["", "x", "3.x", "3.", ".5", "-1.2"] {
            assert_eq!(Xy::parse(bad), None, "{bad:?}");
        }
        // Ordered as numbers: 2.9 < 2.28, 12.10 > 12.9.
        assert!(Xy::new(2, 9) < Xy::new(2, 28));
        assert!(Xy::parse("12.10") > Xy::parse("12.9"));
        assert_eq!(Xy::new(2, 28).to_string(), "2.28");
    }
}

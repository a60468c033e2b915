//! Container ids: validated like runc before anything is touched, because an
//! id becomes a directory name under the state root and a cgroup name.

/// Longest id accepted (runc has no explicit bound; a path component cannot
/// exceed 255 bytes, and engines use 64-character hex ids).
pub const MAX_ID_LEN: usize = 255;

/// An id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Empty id.
    #[error("invalid container id: the id is empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("invalid container id: {len} bytes is longer than {MAX_ID_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// `.` or `..`, or a character outside `[A-Za-z0-9_+.-]`.
    #[error("invalid container id {id:?}: only letters, digits and _ + - . are allowed, and not . or ..")]
    BadChars {
        /// The id as given.
        id: String,
    },
}

/// Checks `id` the way runc does: letters, digits, `_ + - .`; not `.` or
/// `..`; not empty; bounded length.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: id.len() });
    }
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if !ok || id == "." || id == ".." {
        return Err(IdError::BadChars { id: id.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_engine_ids() {
        for id in ["abc", "a.b-c_d+e", &"f".repeat(64), "..."] {
            assert_eq!(validate_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_hostile_ids() {
        assert_eq!(validate_id(""), Err(IdError::Empty));
        for id in ["../evil", "a/b", ".", "..", "a b", "a\0b", "ü"] {
            assert!(
                matches!(validate_id(id), Err(IdError::BadChars { .. })),
                "{id}"
            );
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            validate_id(&long),
            Err(IdError::TooLong {
                len: MAX_ID_LEN + 1
            })
        );
    }
}

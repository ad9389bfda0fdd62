//! The admin's credentials, parsed: SSH public keys of one line each, password hashes of
//! a scheme Raspberry Pi OS accepts, in crypt(3)'s alphabet. Both land in files whose
//! lines and fields mean something (authorized_keys, /etc/shadow), so nothing outside
//! their grammar (a newline, a `:`) may pass.

use std::fmt;

/// One OpenSSH public key line (`ssh-ed25519 AAAA... comment`), checked to parse and to
/// be a single line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SshKey(String);

impl SshKey {
    /// The key, or why it is not one.
    pub fn parse(key: &str) -> Result<SshKey, String> {
        let key = key.trim();
        if key.chars().any(|c| c.is_control()) {
            return Err(
                "an SSH key entry must be one line (it holds a newline or another control character); give each key as its own list entry".into(),
            );
        }
        match ssh_key::PublicKey::from_openssh(key) {
            Ok(k) => match refused_algorithm(&k) {
                Some(why) => Err(why),
                None => Ok(SshKey(key.to_string())),
            },
            Err(e) => Err(format!(
                "not an OpenSSH public key ({e}): expected a line like `ssh-ed25519 AAAAC3... user@host`"
            )),
        }
    }

    /// Whether this is the example key the shipped examples carry, whose private half
    /// nobody holds: a node built with it alone can never be logged into.
    pub fn is_example(&self) -> bool {
        self.0.split_whitespace().nth(1) == Some(EXAMPLE_KEY)
    }

    /// The key line as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the image's sshd would never accept `key`, if it would not: DSA is off in
/// OpenSSH since 7.0 and gone since 9.8, and RSA keys under 1024 bits are refused
/// (`RequiredRSASize`). Such a key would build a node nobody can log into.
fn refused_algorithm(key: &ssh_key::PublicKey) -> Option<String> {
    let make = "make one with `ssh-keygen -t ed25519`";
    match key.key_data() {
        ssh_key::public::KeyData::Dsa(_) => Some(format!(
            "a DSA (ssh-dss) key: OpenSSH no longer accepts them; {make}"
        )),
        ssh_key::public::KeyData::Rsa(r) => {
            let bits = r.n.as_positive_bytes().map_or(0, |b| {
                b.len() * 8 - b.first().map_or(0, |x| x.leading_zeros() as usize)
            });
            (bits < 1024).then(|| {
                format!(
                    "an RSA key of {bits} bits: OpenSSH refuses RSA keys under 1024 bits; {make}"
                )
            })
        }
        _ => None,
    }
}

/// The base64 body of the shipped examples' placeholder key.
pub const EXAMPLE_KEY: &str =
    "AAAAC3NzaC1lZDI1NTE5AAAAIBqU+JMbv/mYQnyv4yiqHAW1Q/hrqkSaWfYBnnh3kInG";

/// Passwords everyone knows: Raspberry Pi OS's old default and its variant.
const KNOWN_PASSWORDS: &[&str] = &["raspberry", "raspberrypi"];

/// A crypt(3) password hash of a scheme Raspberry Pi OS accepts. A secret: its `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The hash, or why it is not a usable one.
    pub fn parse(hash: &str) -> Result<PasswordHash, String> {
        match refuse_password_hash(hash) {
            None => Ok(PasswordHash(hash.to_string())),
            Some(why) => Err(why),
        }
    }

    /// The well-known password this hashes, if it is one: each is tried against the
    /// hash as `login` would check it (sha512-crypt or yescrypt, with the hash's own
    /// salt and parameters).
    pub fn known_password(&self) -> Option<&'static str> {
        use yescrypt::{PasswordHashRef, PasswordVerifier, Yescrypt};
        let matches = |p: &str| match self.0.get(..3) {
            Some("$6$") => sha_crypt::sha512_check(p, &self.0).is_ok(),
            Some("$y$") => PasswordHashRef::new(&self.0)
                .is_ok_and(|h| Yescrypt::default().verify_password(p.as_bytes(), h).is_ok()),
            _ => false,
        };
        KNOWN_PASSWORDS.iter().find(|p| matches(p)).copied()
    }

    /// The hash as /etc/shadow holds it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// Why `hash` is not a usable crypt(3) hash, if it is not. Raspberry Pi OS (PAM with
/// libxcrypt) accepts yescrypt (`$y$`, its default since bullseye) and sha512-crypt (`$6$`).
fn refuse_password_hash(hash: &str) -> Option<String> {
    let fields: Vec<&str> = hash.split('$').collect();
    let b64 = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/')
    };
    let ok = match fields.as_slice() {
        ["", "y", params, salt, h] => b64(params) && b64(salt) && h.len() == 43 && b64(h),
        ["", "6", rounds, salt, h]
            if rounds
                .strip_prefix("rounds=")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) =>
        {
            salt.len() <= 16 && b64(salt) && h.len() == 86 && b64(h)
        }
        ["", "6", salt, h] => salt.len() <= 16 && b64(salt) && h.len() == 86 && b64(h),
        _ => false,
    };
    if ok {
        return None;
    }
    let scheme = match fields.get(1) {
        Some(&"1") => "md5-crypt, which is too weak".to_string(),
        Some(&"5") => "sha256-crypt".to_string(),
        Some(&"2b") | Some(&"2y") | Some(&"2a") => {
            "bcrypt, which Raspberry Pi OS's PAM does not accept".to_string()
        }
        Some(&"y") | Some(&"6") => "a malformed hash of its scheme".to_string(),
        _ => "not a crypt(3) hash".to_string(),
    };
    Some(format!(
        "the password hash is {scheme}; use yescrypt (`mkpasswd -m yescrypt`) or sha512-crypt (`openssl passwd -6`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_of_the_accepted_schemes_pass() {
        let yescrypt = "$y$j9T$6Zt8ElGq1Ysq2X5RrWd0b/$wIZ0V6pDy3ZkNZ2cI2C3yT2zQuyH9jZBz8Y7WQx8XcB";
        let sha512 = format!("$6$saltsalt${}", "a".repeat(86));
        assert_eq!(refuse_password_hash(yescrypt), None);
        assert_eq!(refuse_password_hash(&sha512), None);
        assert!(
            refuse_password_hash("$1$abc$def")
                .unwrap()
                .contains("md5-crypt")
        );
        assert!(
            refuse_password_hash("$2b$10$abc")
                .unwrap()
                .contains("bcrypt")
        );
        assert!(
            refuse_password_hash("hunter2")
                .unwrap()
                .contains("not a crypt(3) hash")
        );
        assert!(
            refuse_password_hash("$y$j9T$salt$short")
                .unwrap()
                .contains("malformed")
        );
    }

    #[test]
    fn hashes_that_would_add_lines_or_fields_are_refused() {
        let h = "a".repeat(86);
        assert_eq!(
            refuse_password_hash(&format!("$6$rounds=5000$salt${h}")),
            None
        );
        for bad in [
            format!("$6$rounds=:x$salt${h}"),
            format!("$6$rounds=$salt${h}"),
            format!("$6$salt${h}\nroot::0:0:99999:7:::"),
            format!("$6$sa:lt${h}"),
        ] {
            assert!(refuse_password_hash(&bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_keys_must_parse_and_be_one_line() {
        let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb4y2jhlLsrSK5XoGWqu4CgqOXoDsLyDfE7Nr+ulfrq admin@laptop";
        assert_eq!(SshKey::parse(good).unwrap().as_str(), good);
        assert!(SshKey::parse("ssh-ed25519 AAAAnotbase64!").is_err());
        assert!(SshKey::parse("hello").is_err());
        let two = format!("{good}\nssh-ed25519 AAAAjunk evil");
        assert!(SshKey::parse(&two).unwrap_err().contains("one line"));
    }
}

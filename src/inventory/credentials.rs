//! The admin's credentials: SSH public keys that must parse, password hashes of a scheme
//! Raspberry Pi OS accepts.

/// Why `key` is not an OpenSSH public key line, if it is not.
pub fn refuse_ssh_key(key: &str) -> Option<String> {
    match ssh_key::PublicKey::from_openssh(key.trim()) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "not an OpenSSH public key ({e}): expected a line like `ssh-ed25519 AAAAC3... user@host`"
        )),
    }
}

/// Why `hash` is not a usable crypt(3) hash, if it is not. Raspberry Pi OS (PAM with
/// libxcrypt) accepts yescrypt (`$y$`, its default since bullseye) and sha512-crypt (`$6$`).
pub fn refuse_password_hash(hash: &str) -> Option<String> {
    let fields: Vec<&str> = hash.split('$').collect();
    let b64 = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/')
    };
    let ok = match fields.as_slice() {
        ["", "y", params, salt, h] => b64(params) && b64(salt) && h.len() == 43 && b64(h),
        ["", "6", rounds, salt, h] if rounds.starts_with("rounds=") => {
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
    fn ssh_keys_must_parse() {
        let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb4y2jhlLsrSK5XoGWqu4CgqOXoDsLyDfE7Nr+ulfrq admin@laptop";
        assert_eq!(refuse_ssh_key(good), None);
        assert!(refuse_ssh_key("ssh-ed25519 AAAAnotbase64!").is_some());
        assert!(refuse_ssh_key("hello").is_some());
    }
}

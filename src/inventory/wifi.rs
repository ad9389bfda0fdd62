//! Wi-Fi settings of a profile's interface (`wlan0: { ssid, psk, country }`), parsed
//! when the profile loads into types that hold nothing the files they land in cannot
//! take: NetworkManager keyfiles, wpa_supplicant.conf and the kernel command line.
//! Each is then written by its own writer (`plan::network`), which escapes or refuses.

use std::fmt;

use super::grammar::{deserialize_by_parse, shown};

/// A Wi-Fi network name: 1 to 32 bytes (802.11's limit), no control characters (no
/// line break, tab, NUL or DEL), so it can never end a line of a file it lands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssid(String);

impl Ssid {
    /// 1 to 32 bytes of UTF-8 without control characters.
    pub fn parse(s: &str) -> Result<Ssid, String> {
        if s.is_empty() || s.len() > 32 {
            return Err(format!(
                "SSID `{}` is {} bytes; an SSID is 1 to 32 bytes",
                shown(s),
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!(
                "SSID `{}` holds the control character `{}`",
                shown(s),
                shown(&c.to_string())
            ));
        }
        Ok(Ssid(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every byte is printable ASCII (space to `~`).
    pub fn is_printable_ascii(&self) -> bool {
        self.0.bytes().all(|b| (0x20..=0x7e).contains(&b))
    }
}

deserialize_by_parse!(Ssid, "a Wi-Fi network name");

/// A WPA pre-shared key: a passphrase of 8 to 63 printable ASCII characters (space to
/// `~`, as 802.11 defines it), or the raw key as exactly 64 hex digits. Never shown:
/// its `Debug` is a placeholder and refusals do not quote it.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(String);

impl Psk {
    /// A passphrase or a 64-hex-digit key.
    pub fn parse(s: &str) -> Result<Psk, String> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Psk(s.to_string()));
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err("the Wi-Fi passphrase (not shown) holds a character outside printable ASCII (a line break, a tab, a letter with an accent): a WPA passphrase is 8 to 63 printable ASCII characters".into());
        }
        if !(8..=63).contains(&s.len()) {
            return Err(format!(
                "the Wi-Fi passphrase (not shown) is {} characters: a WPA passphrase is 8 to 63 printable ASCII characters, or the key itself as 64 hex digits",
                s.len()
            ));
        }
        Ok(Psk(s.to_string()))
    }

    /// The raw key (64 hex digits) rather than a passphrase.
    pub fn is_raw_key(&self) -> bool {
        self.0.len() == 64
    }

    /// The secret itself, for the files that must hold it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(not shown)")
    }
}

deserialize_by_parse!(Psk, "a WPA passphrase or 64-hex-digit key");

/// A Wi-Fi regulatory country: an assigned ISO 3166-1 alpha-2 code (`GB`, `US`), in
/// capitals, as the kernel's `cfg80211.ieee80211_regdom=` and wpa_supplicant's
/// `country=` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country([u8; 2]);

impl Country {
    /// One of [`ISO_3166_ALPHA2`].
    pub fn parse(s: &str) -> Result<Country, String> {
        if ISO_3166_ALPHA2.contains(&s) {
            let b = s.as_bytes();
            return Ok(Country([b[0], b[1]]));
        }
        if s.eq_ignore_ascii_case("UK") {
            return Err("`UK` is not an ISO 3166-1 code: the United Kingdom's is `GB`".into());
        }
        let upper = s.to_ascii_uppercase();
        if ISO_3166_ALPHA2.contains(&upper.as_str()) {
            return Err(format!(
                "country `{s}`: write the code in capitals, `{upper}`"
            ));
        }
        Err(format!(
            "`{}` is not an ISO 3166-1 alpha-2 country code like GB, US or DE",
            shown(s)
        ))
    }

    /// The two letters.
    pub fn as_str(&self) -> &str {
        // Always two ASCII capitals from the list.
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

deserialize_by_parse!(Country, "a two-letter country code like GB");

/// The assigned ISO 3166-1 alpha-2 codes (249, as of ISO 3166-1:2020 and its newsletters
/// to 2024), sorted.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssids_are_one_to_32_bytes_without_control_characters() {
        for good in ["lab", "Café Wi-Fi", " lead;ing\\\"#", &"x".repeat(32)] {
            assert_eq!(Ssid::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "lab\nx=y",
            "a\tb",
            "a\u{7f}",
            "a\0",
            &"x".repeat(33),
            "ééééééééééééééééé",
        ] {
            assert!(Ssid::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn psks_are_wpa_passphrases_or_raw_keys_and_never_shown() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(Psk::parse(&hex).unwrap().is_raw_key());
        for good in ["12345678", " a\"b\\c#d;e ", &"~".repeat(63)] {
            let p = Psk::parse(good).unwrap();
            assert!(!p.is_raw_key());
            assert_eq!(p.expose(), good);
        }
        for bad in [
            "1234567",
            &"x".repeat(64),
            &"x".repeat(65),
            "secret\npsk=x",
            "pässword1",
        ] {
            let e = Psk::parse(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert_eq!(
            format!("{:?}", Psk::parse("hunter22").unwrap()),
            "Psk(not shown)"
        );
    }

    #[test]
    fn countries_are_assigned_iso_codes() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        for good in ["GB", "US", "DE", "NO", "SS"] {
            assert_eq!(Country::parse(good).unwrap().to_string(), good);
        }
        assert!(Country::parse("gb").unwrap_err().contains("`GB`"));
        for bad in ["UK", "XX", "ZZ", "G", "GBR", "00", "G\n"] {
            assert!(Country::parse(bad).is_err(), "{bad:?}");
        }
    }
}

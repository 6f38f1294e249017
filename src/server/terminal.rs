//! What the operator commands print: control characters escaped, passwords redacted or scrubbed. A leaf:
//! `cli`, `doctor`, `import` and config's errors use it.

/// `value` with each control character (`char::is_control`: C0 including ESC, CR, LF and tab,
/// DEL, C1) and each bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069, which
/// reorder what follows on screen) written as a Rust escape (`\u{1b}`, `\n`, `\t`, `\u{202e}`);
/// everything else, non-ASCII letters included, is kept.
pub fn escape_controls(value: &str) -> String {
    let is_bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !value.chars().any(|c| c.is_control() || is_bidi(c)) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if is_bidi(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `scheme://user:password@host/…?password=…` with every password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let rest: String = rest
        .split_inclusive(['?', '&', '#'])
        .map(|piece| match piece.split_once('=') {
            Some((key, value)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=***{}", &value[value.find(['?', '&', '#']).unwrap_or(value.len())..])
            }
            _ => piece.to_owned(),
        })
        .collect();
    // The user information ends at the last `@`: a password may hold a `/`, `?`, `#` or `@` that
    // its writer did not percent-encode (an `@` in the query then hides more than the password).
    if let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    format!("{scheme}://{rest}")
}

/// The passwords of a database URL, in its user information (ended at the last `@`, and at the
/// last `@` before the first `/`, `?` or `#` as a well-formed URL ends it) or a `password=`
/// parameter, as written and percent-decoded; longest first, so that a password holding another
/// is hidden whole.
pub fn url_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, rest)) = url.split_once("://") else { return found };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    for authority in [&rest[..end], rest] {
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password.to_owned());
        }
    }
    for pair in rest.split(['?', '&', '#']) {
        if let Some((key, value)) = pair.split_once('=')
            && key.eq_ignore_ascii_case("password")
        {
            found.push(value.to_owned());
        }
    }
    let decoded: Vec<String> =
        found.iter().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()).collect();
    found.extend(decoded);
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// `text` with each of `secrets` replaced by `***` (a driver's error could quote a password).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().filter(|secret| !secret.is_empty()).fold(text.to_owned(), |out, s| out.replace(s.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("evil\u{202e}gpj.exe\u{7f}\u{9b}"), r"evil\u{202e}gpj.exe\u{7f}\u{9b}");
        assert_eq!(escape_controls("Dana\u{1b}[2J\nx\t"), r"Dana\u{1b}[2J\nx\t");
        for value in ["Zoë Ørsted-Łukasz", "渡辺 ワイン", "o'brien+c7@example.com", "Mozilla/5.0 (X11; Linux)"]
        {
            assert_eq!(escape_controls(value), value);
        }
    }

    #[test]
    fn urls_lose_their_passwords_and_keep_the_rest() {
        assert_eq!(
            redact_url("postgres://libero:s3cret@db.example.com:5432/postgres?sslmode=require"),
            "postgres://libero:***@db.example.com:5432/postgres?sslmode=require"
        );
        assert_eq!(redact_url("postgres://h/db?user=u&password=pw&x=1"), "postgres://h/db?user=u&password=***&x=1");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1:1/x"), "postgres://postgres@127.0.0.1:1/x");
        assert_eq!(redact_url("postgres://u:pa/ss@db:5432/x"), "postgres://u:***@db:5432/x", "a / in the password");
        assert_eq!(redact_url("postgres://u:p@ss@db/x?sslmode=require"), "postgres://u:***@db/x?sslmode=require");
        assert_eq!(redact_url("postgres://u:Tr0ub#dor@db:5432/x"), "postgres://u:***@db:5432/x", "a # in the password");
        assert_eq!(redact_url("postgres://u:P@ss#20?24@db/x"), "postgres://u:***@db/x", "an @, a # and a ?");
        assert_eq!(redact_url("postgres://h:5432/x?user=u@y&password=pw"), "postgres://h:***@y&password=***");
        assert_eq!(redact_url("postgress:///x?host=/run&password=pw"), "postgress:///x?host=/run&password=***");
        assert_eq!(redact_url("sqlite://libero.db"), "sqlite://libero.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn database_passwords_are_scrubbed_as_written_and_decoded() {
        let url = "postgres://libero:s3cr%40t@db.example.com:5432/postgres?sslmode=require&password=other";
        let message = "password authentication failed: s3cr@t s3cr%40t other";
        assert_eq!(scrub(message, &url_passwords(url)), "password authentication failed: *** *** ***");
        assert_eq!(scrub("nothing to hide", &url_passwords("postgres://u@h/db")), "nothing to hide");
        let unencoded = "postgres://u:P@ss#2024@db/x";
        assert_eq!(
            scrub(&format!("invalid URL {unencoded}"), &url_passwords(unencoded)),
            "invalid URL postgres://u:***@db/x"
        );
        assert_eq!(scrub("x", &url_passwords("not a url")), "x");
    }
}

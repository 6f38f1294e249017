//! What the operator commands print: control characters escaped, passwords redacted or scrubbed. A leaf:
//! `cli`, `doctor` and `import` use it.

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
    // The user information ends at the last `@` before the query: a password may hold a `/`
    // (or an `@`) that its writer did not percent-encode.
    let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
    let (userinfo, after) = match rest[..query_start].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (host, tail) = after.split_at(end);
    let authority = match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => host.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The passwords of a database URL, in its user information or a `password=` query parameter, as
/// written and percent-decoded; longest first, so that a password holding another is hidden whole.
pub fn url_passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, rest)) = url.split_once("://") else { return found };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..end].rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_owned());
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split(['&', '#']) {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                found.push(value.to_owned());
            }
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
        assert_eq!(redact_url("sqlite://libero.db"), "sqlite://libero.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn database_passwords_are_scrubbed_as_written_and_decoded() {
        let url = "postgres://libero:s3cr%40t@db.example.com:5432/postgres?sslmode=require&password=other";
        let message = "password authentication failed: s3cr@t s3cr%40t other";
        assert_eq!(scrub(message, &url_passwords(url)), "password authentication failed: *** *** ***");
        assert_eq!(scrub("nothing to hide", &url_passwords("postgres://u@h/db")), "nothing to hide");
        assert_eq!(scrub("x", &url_passwords("not a url")), "x");
    }
}

//! "Chrome on Windows" from a stored `User-Agent`: just enough for a merchant to recognise their
//! own devices in "Your sessions" and `libero sessions list`. Not a full parser (no versions, no
//! bots): unknown agents say so rather than guess.

/// The browser and operating system a session was signed in from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// "Chrome", "Edge", "Firefox", "Safari", "Opera", or "Unknown browser".
    pub browser: &'static str,
    /// "Windows", "macOS", "iOS", "Android", "ChromeOS", "Linux", or `None` when not recognised.
    pub os: Option<&'static str>,
}

impl Device {
    /// Reads a `User-Agent` header value (`None` when the browser sent none).
    pub fn parse(user_agent: Option<&str>) -> Self {
        let ua = user_agent.unwrap_or_default();
        Self { browser: browser(ua), os: os(ua) }
    }

    /// "Chrome on Windows", "Safari", "Unknown browser on Linux", "Unknown browser".
    pub fn label(&self) -> String {
        match self.os {
            Some(os) => format!("{} on {os}", self.browser),
            None => self.browser.to_owned(),
        }
    }
}

/// Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari", and the iOS
/// browsers carry their own token next to Safari's.
fn browser(ua: &str) -> &'static str {
    const BROWSERS: [(&str, &str); 10] = [
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    BROWSERS.iter().find(|(token, _)| ua.contains(token)).map_or("Unknown browser", |(_, name)| name)
}

/// iOS says "like Mac OS X" and Android says "Linux": check them first.
fn os(ua: &str) -> Option<&'static str> {
    const SYSTEMS: [(&str, &str); 8] = [
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("iPod", "iOS"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    SYSTEMS.iter().find(|(token, _)| ua.contains(token)).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(ua: &str) -> String {
        Device::parse(Some(ua)).label()
    }

    #[test]
    fn chrome_on_windows() {
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
            ),
            "Chrome on Windows"
        );
    }

    #[test]
    fn edge_on_windows_is_not_taken_for_chrome() {
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
            ),
            "Edge on Windows"
        );
    }

    #[test]
    fn firefox_on_linux() {
        assert_eq!(
            label("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"),
            "Firefox on Linux"
        );
    }

    #[test]
    fn safari_on_macos() {
        assert_eq!(
            label(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
            ),
            "Safari on macOS"
        );
    }

    #[test]
    fn safari_on_an_iphone_is_ios_not_macos() {
        assert_eq!(
            label(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
            ),
            "Safari on iOS"
        );
    }

    #[test]
    fn chrome_and_firefox_on_an_ipad_keep_their_names() {
        assert_eq!(
            label(
                "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
            ),
            "Chrome on iOS"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15"
            ),
            "Firefox on iOS"
        );
    }

    #[test]
    fn chrome_on_android_is_android_not_linux() {
        assert_eq!(
            label(
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36"
            ),
            "Chrome on Android"
        );
    }

    #[test]
    fn firefox_on_macos() {
        assert_eq!(
            label("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0"),
            "Firefox on macOS"
        );
    }

    #[test]
    fn unknown_agents_fall_back_to_unknown_browser() {
        assert_eq!(Device::parse(None).label(), "Unknown browser");
        assert_eq!(label(""), "Unknown browser");
        assert_eq!(label("curl/8.5.0"), "Unknown browser");
        assert_eq!(label("SomeTool/1.0 (X11; Linux x86_64)"), "Unknown browser on Linux");
    }
}

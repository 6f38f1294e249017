//! How the front end reaches the browser: the `/pkg` files under content-hashed names, sent
//! precompressed and cached for a year; everything else compressed on the fly and revalidated.
//!
//! The wasm is the largest thing a merchant downloads and the admin opens Libero over whatever
//! Wi-Fi the tasting room has, so it is compressed **once, at build time**
//! (`scripts/precompress.mjs`: brotli quality 11, gzip level 9, written as `.br`/`.gz` siblings)
//! and sent as a file: no CPU per request, and a smaller file than any quality affordable per
//! request (what it saves: bench/profile.md, "Precompressed /pkg"). HTML and server-function JSON
//! are a few KB, compressed on the fly at tower-http's defaults (brotli 4, gzip 6).
//! Hashed names let browsers keep the files for a year without asking again.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use axum::{
    Router,
    extract::Request,
    http::{Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode, Version, header},
    middleware::{Next, from_fn},
    response::Response,
};
use leptos::config::LeptosOptions;
use tower_http::compression::{
    CompressionLayer,
    predicate::{And, Predicate, SizeAbove},
};

/// `Cache-Control` of a `/pkg` file whose name carries its content hash: it never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of every answer that sets none itself (the landing page, the 404 page, public
/// files under unhashed names): a cache may keep it but must ask the server before reusing it.
/// Signed-in pages and server functions are `no-store` (the session guard), and so are the
/// server's error pages.
pub const REVALIDATE: &str = "no-cache";

/// `Cache-Control: no-store`, as a response part: what the guard's and the error pages' answers carry.
pub fn no_store() -> [(HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// Answers smaller than this are sent as they are: below one TCP packet compression saves no
/// round trip, only CPU.
pub const MIN_COMPRESSED_SIZE: u16 = 1024;

/// The stylesheet's URL, resolved once at start-up ([`FrontEnd::install`]).
static STYLESHEET: OnceLock<String> = OnceLock::new();

/// The settings page's lazily loaded wasm chunks, resolved once at start-up.
static SETTINGS_CHUNKS: OnceLock<Vec<String>> = OnceLock::new();

/// The manifest key of the settings page's chunk: `#[lazy_route]` names it after the route's
/// type (`SettingsRoute` → `__settings_route_view_<id>`).
const SETTINGS_CHUNK_KEY: &str = "__settings_route_view_";

/// The URLs of the settings page's wasm chunks (`/pkg/split___settings_route_view_….wasm`), for
/// the dashboard to have the browser prefetch; empty until [`FrontEnd::install`] has run, or for
/// a site built without `--split`.
pub fn settings_chunk_hrefs() -> &'static [String] {
    SETTINGS_CHUNKS.get().map_or(&[], Vec::as_slice)
}

/// The stylesheet's URL (`/pkg/libero.<hash>.css` when the build hashed it) for pages rendered
/// outside Leptos' routes; `/pkg/libero.css` until [`FrontEnd::install`] has run.
pub fn stylesheet_href() -> &'static str {
    STYLESHEET.get().map_or("/pkg/libero.css", String::as_str)
}

/// Why the front end's files cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FrontEndError {
    /// Hashed names are on, but the file that lists the hashes is missing.
    #[error(
        "LEPTOS_HASH_FILES is on but {path} cannot be read ({source}): put the {name} that \
         `cargo leptos build` wrote next to the binary (target/release/{name}) beside it, or set \
         LEPTOS_HASH_FILE_NAME to its path"
    )]
    HashFile {
        /// Where it was looked for.
        path: PathBuf,
        /// Its configured name.
        name: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The code-splitting manifest cannot be read.
    #[error(
        "{path} is not a readable wasm-split manifest ({reason}): rebuild the site with `cargo leptos build --split`"
    )]
    SplitManifest {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The hash file does not name one of the files.
    #[error("{path} has no `{kind}:` line: it was not written by `cargo leptos build`")]
    HashFileIncomplete {
        /// The hash file.
        path: PathBuf,
        /// `css`, `js` or `wasm`.
        kind: &'static str,
    },
    /// The site is not the one the hash file describes.
    #[error(
        "{file} is missing: the site in LEPTOS_SITE_ROOT is not from the build that wrote {hash_file}; \
         deploy the binary, its hash file and the site from one `make release`"
    )]
    SiteMismatch {
        /// The file the hash file names.
        file: PathBuf,
        hash_file: PathBuf,
    },
}

/// The front end's files as the build named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontEnd {
    /// The stylesheet's URL path. (The JS and wasm are only checked: Leptos' `HydrationScripts`
    /// links them itself.)
    pub stylesheet: String,
    /// The URL paths of the settings page's wasm chunks (none for a build without `--split`).
    pub settings_chunks: Vec<String>,
}

impl FrontEnd {
    /// Reads the names the way Leptos' `HydrationScripts` does (the hash file next to the running
    /// binary), and checks that the site has those files: a binary deployed with another build's
    /// site stops here instead of serving pages that never hydrate.
    pub fn resolve(options: &LeptosOptions) -> Result<Self, FrontEndError> {
        let pkg = options.site_pkg_dir_route_base();
        let pkg_dir = Path::new(&*options.site_root).join(&*options.site_pkg_dir);
        if !options.hash_files {
            let manifest = pkg_dir.join("__wasm_split_manifest.json");
            return Ok(Self {
                stylesheet: format!("{pkg}{}.css", options.output_name),
                settings_chunks: settings_chunks(&manifest, &pkg)?,
            });
        }
        let hash_file = hash_file_path(options);
        let hashes = std::fs::read_to_string(&hash_file).map_err(|source| FrontEndError::HashFile {
            path: hash_file.clone(),
            name: options.hash_file.to_string(),
            source,
        })?;
        let name = |kind: &'static str| {
            let hash = hash_of(&hashes, kind)
                .ok_or_else(|| FrontEndError::HashFileIncomplete { path: hash_file.clone(), kind })?;
            let name = format!("{}.{hash}.{kind}", options.output_name);
            let file = pkg_dir.join(&name);
            if !file.is_file() {
                return Err(FrontEndError::SiteMismatch { file, hash_file: hash_file.clone() });
            }
            Ok(name)
        };
        let stylesheet = format!("{pkg}{}", name("css")?);
        name("js")?;
        name("wasm")?;
        // The lazy routes' main module imports the chunk loader: a site built without `--split`
        // would never hydrate, so it is refused here like any other incomplete site.
        let Some(hash) = hash_of(&hashes, "manifest") else {
            return Err(FrontEndError::SplitManifest {
                path: hash_file,
                reason: "the hash file names no `manifest:`: the site was built without --split".to_owned(),
            });
        };
        let manifest = pkg_dir.join(format!("__wasm_split_manifest.{hash}.json"));
        if !manifest.is_file() {
            return Err(FrontEndError::SiteMismatch { file: manifest, hash_file });
        }
        let settings_chunks = settings_chunks(&manifest, &pkg)?;
        if settings_chunks.is_empty() {
            return Err(FrontEndError::SplitManifest {
                path: manifest,
                reason: format!("it names no chunk of the settings page (`{SETTINGS_CHUNK_KEY}…`)"),
            });
        }
        Ok(Self { stylesheet, settings_chunks })
    }

    /// Makes these names the ones [`stylesheet_href`] gives (the first call wins: one process
    /// serves one build).
    pub fn install(self) {
        let _ = STYLESHEET.set(self.stylesheet);
        let _ = SETTINGS_CHUNKS.set(self.settings_chunks);
    }
}

/// The settings page's chunks named in the wasm-split manifest at `path`, as `/pkg/<stem>.wasm`
/// URLs; none when there is no manifest (a development build with plain names).
fn settings_chunks(path: &Path, pkg: &str) -> Result<Vec<String>, FrontEndError> {
    let chunks = match std::fs::read_to_string(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        read => read.map_err(|err| err.to_string()).and_then(|text| settings_chunks_in(&text, pkg)),
    };
    chunks.map_err(|reason| FrontEndError::SplitManifest { path: path.to_owned(), reason })
}

/// The settings page's chunks in a wasm-split manifest (`{"<lazy function>_<id>": ["<file stem>",
/// …]}`: the files a lazy function needs, its own and the chunks it shares), as URLs under `pkg`.
fn settings_chunks_in(manifest: &str, pkg: &str) -> Result<Vec<String>, String> {
    let manifest: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_str(manifest).map_err(|err| err.to_string())?;
    Ok(manifest
        .iter()
        .filter(|(key, _)| key.starts_with(SETTINGS_CHUNK_KEY))
        .flat_map(|(_, stems)| stems.iter().map(|stem| format!("{pkg}{stem}.wasm")))
        .collect())
}

/// `LEPTOS_HASH_FILES` and `LEPTOS_HASH_FILE_NAME` default to what cargo-leptos compiled this
/// binary with, as `LEPTOS_OUTPUT_NAME` does in Leptos itself: the binary of `cargo leptos build`
/// finds its hashed files without more settings, and one built by plain `cargo build` (the
/// tests) keeps plain names. Either variable in the environment still decides.
pub fn with_build_defaults(mut options: LeptosOptions) -> LeptosOptions {
    if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
        options.hash_files = option_env!("LEPTOS_HASH_FILES") == Some("true");
    }
    if std::env::var_os("LEPTOS_HASH_FILE_NAME").is_none()
        && let Some(name) = option_env!("LEPTOS_HASH_FILE_NAME")
    {
        options.hash_file = name.into();
    }
    options
}

/// Where Leptos reads the hash file: `hash_file` relative to the running binary's directory (an
/// absolute `LEPTOS_HASH_FILE_NAME` is used as it is).
fn hash_file_path(options: &LeptosOptions) -> PathBuf {
    let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)).unwrap_or_default();
    exe_dir.join(&*options.hash_file)
}

/// The hash of `kind` in cargo-leptos' hash file (`css: <hash>` lines).
fn hash_of<'a>(hashes: &'a str, kind: &str) -> Option<&'a str> {
    hashes.lines().filter_map(|line| line.split_once(':')).find(|(k, _)| k.trim() == kind).map(|(_, h)| h.trim())
}

/// `/pkg/*` from the site, each file as its `.br` or `.gz` sibling when the client accepts it and
/// the build wrote one (ServeDir picks by `Accept-Encoding`), cached for a year under a hashed
/// name.
pub fn pkg_routes<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    Router::new()
        .route_service(
            &leptos_axum::site_pkg_dir_service_route_path(options),
            leptos_axum::site_pkg_dir_service(options),
        )
        .route_layer(from_fn(pkg_headers))
}

async fn pkg_headers(req: Request, next: Next) -> Response {
    let hashed = carries_content_hash(req.uri().path());
    let mut response = next.run(req).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let cache_control = if hashed { IMMUTABLE } else { REVALIDATE };
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
        // ServeDir chose the representation by Accept-Encoding but does not say so: without this
        // a shared cache could hand a brotli body to a client that cannot read it.
        response.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether a file name is cargo-leptos' `<stem>.<hash>.<ext>`, the hash being the 22-character
/// base64url MD5 of the contents (`libero.Qx3…Z1.wasm`, `__wasm_split.<hash>.js`).
pub fn carries_content_hash(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let mut parts = name.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty() && hash.len() == 22 && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Brotli or gzip, as the client asks, for answers worth it: at least [`MIN_COMPRESSED_SIZE`]
/// (or of unknown size: streamed SSR) and of a type that compresses. Never `text/event-stream`
/// (the encoder would hold events back until its buffer fills), never what is already compressed
/// (images, fonts, archives — and `/pkg` files sent as their `.br`/`.gz`, which carry a
/// `Content-Encoding` and are passed through). A `/pkg` file the build did not precompress is
/// compressed here, so no client ever gets an uncompressed wasm.
pub fn compression() -> CompressionLayer<And<SizeAbove, CompressiblePredicate>> {
    CompressionLayer::new()
        .compress_when(SizeAbove::new(MIN_COMPRESSED_SIZE).and(compressible as CompressiblePredicate))
}

/// The type of [`compressible`] as a predicate.
pub type CompressiblePredicate = fn(StatusCode, Version, &HeaderMap, &Extensions) -> bool;

/// The content types worth compressing (compared without regard to case, parameters ignored).
const COMPRESSIBLE_TYPES: [&str; 11] = [
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "text/xml",
    "application/javascript",
    "application/json",
    "application/xml",
    "application/wasm",
    "application/manifest+json",
    "image/svg+xml",
];

fn compressible(_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    COMPRESSIBLE_TYPES.iter().any(|known| known.eq_ignore_ascii_case(essence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_chunks_are_read_from_the_split_manifest() {
        let manifest = r#"{
            "__landing_route_view_1988624668210427895": ["split___landing_route_view_1988624668210427895.Uw0D3exYANsl0LtCb6m83Q"],
            "__settings_route_view_4475835684901546030": ["split___settings_route_view_4475835684901546030.F7dZQiOjtAdiJece0dR4eg", "chunk_1.AB7RV-eHZLahXlpjYiPyzg"]
        }"#;
        assert_eq!(
            settings_chunks_in(manifest, "/pkg/").unwrap(),
            [
                "/pkg/split___settings_route_view_4475835684901546030.F7dZQiOjtAdiJece0dR4eg.wasm",
                "/pkg/chunk_1.AB7RV-eHZLahXlpjYiPyzg.wasm",
            ],
            "the settings page's own chunk and the one it shares, not the landing page's"
        );
        assert!(settings_chunks_in(r#"{"__landing_route_view_1": ["a"]}"#, "/pkg/").unwrap().is_empty());
        assert!(settings_chunks_in("[1, 2]", "/pkg/").is_err(), "not a manifest");
    }

    /// A 22-character base64url hash, as cargo-leptos writes them.
    const HASH: &str = "Qx3mZ0f-_a1b2c3d4e5f6g";

    #[test]
    fn cargo_leptos_hashed_names_are_recognised() {
        assert_eq!(HASH.len(), 22);
        assert!(carries_content_hash(&format!("/pkg/libero.{HASH}.wasm")));
        assert!(carries_content_hash(&format!("/pkg/libero.{HASH}.css")));
        assert!(carries_content_hash(&format!("/pkg/__wasm_split.{HASH}.js")));
    }

    #[test]
    fn plain_names_and_lookalikes_are_not_hashed() {
        assert!(!carries_content_hash("/pkg/libero.wasm"));
        assert!(!carries_content_hash("/pkg/libero.css"));
        assert!(!carries_content_hash("/pkg/libero_bg.wasm.d.ts"), "two extensions, no hash");
        assert!(!carries_content_hash(&format!("/pkg/libero.{}.wasm", &HASH[1..])), "21 characters");
        assert!(!carries_content_hash(&format!("/pkg/libero.{}+.wasm", &HASH[1..])), "not base64url");
        assert!(!carries_content_hash(&format!("/pkg/.{HASH}.wasm")), "no stem");
        assert!(!carries_content_hash(&format!("/pkg/libero.{HASH}.wasm.br")), "a sibling asked for by name");
    }

    fn compressed_on_the_fly(content_type: &'static str) -> bool {
        let headers = HeaderMap::from_iter([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))]);
        compressible(StatusCode::OK, Version::HTTP_11, &headers, &Extensions::new())
    }

    #[test]
    fn event_streams_and_compressed_formats_are_never_compressed_on_the_fly() {
        for content_type in ["text/event-stream", "image/png", "image/webp", "font/woff2", "application/zip", ""] {
            assert!(!compressed_on_the_fly(content_type), "{content_type:?}");
        }
        for content_type in
            ["text/html; charset=utf-8", "application/json", "application/wasm", "text/css", "text/javascript"]
        {
            assert!(compressed_on_the_fly(content_type), "control: {content_type}");
        }
    }

    /// A hash file as cargo-leptos writes it, for a build without `--split`.
    const HASHES: &str = "js: AAAAAAAAAAAAAAAAAAAAAA\nwasm: BBBBBBBBBBBBBBBBBBBBBB\ncss: CCCCCCCCCCCCCCCCCCCCCC\n";

    #[test]
    fn the_hash_file_gives_each_kind_its_hash() {
        assert_eq!(hash_of(HASHES, "css"), Some("CCCCCCCCCCCCCCCCCCCCCC"));
        assert_eq!(hash_of(HASHES, "wasm"), Some("BBBBBBBBBBBBBBBBBBBBBB"));
        assert_eq!(hash_of(HASHES, "manifest"), None);
    }

    #[test]
    fn without_hashed_names_the_stylesheet_is_the_plain_one() {
        let options = LeptosOptions::builder().output_name("libero").build();
        assert_eq!(FrontEnd::resolve(&options).unwrap().stylesheet, "/pkg/libero.css");
    }

    #[test]
    fn hashed_names_without_their_hash_file_stop_start_up_with_its_path() {
        let options = LeptosOptions::builder()
            .output_name("libero")
            .hash_files(true)
            .hash_file("/nonexistent/libero-hash.txt".into())
            .build();
        let err = FrontEnd::resolve(&options).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/libero-hash.txt"), "{err}");
    }

    #[test]
    fn a_site_from_another_build_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &Path, contents: &str| std::fs::write(path, contents).unwrap();
        let hash_file = dir.path().join("hash.txt");
        write(&hash_file, HASHES);
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        for name in ["libero.AAAAAAAAAAAAAAAAAAAAAA.js", "libero.CCCCCCCCCCCCCCCCCCCCCC.css"] {
            write(&dir.path().join("pkg").join(name), "x");
        }
        let options = LeptosOptions::builder()
            .output_name("libero")
            .site_root(dir.path().to_str().unwrap())
            .hash_files(true)
            .hash_file(hash_file.to_str().unwrap().into())
            .build();
        let err = FrontEnd::resolve(&options).unwrap_err().to_string();
        assert!(err.contains("libero.BBBBBBBBBBBBBBBBBBBBBB.wasm is missing"), "{err}");

        write(&dir.path().join("pkg/libero.BBBBBBBBBBBBBBBBBBBBBB.wasm"), "x");
        let err = FrontEnd::resolve(&options).unwrap_err().to_string();
        assert!(err.contains("built without --split"), "a site without its lazy chunks: {err}");

        write(&hash_file, &format!("{HASHES}manifest: DDDDDDDDDDDDDDDDDDDDDD\n"));
        let err = FrontEnd::resolve(&options).unwrap_err().to_string();
        assert!(err.contains("__wasm_split_manifest.DDDDDDDDDDDDDDDDDDDDDD.json is missing"), "{err}");

        let manifest = dir.path().join("pkg/__wasm_split_manifest.DDDDDDDDDDDDDDDDDDDDDD.json");
        write(&manifest, r#"{"__landing_route_view_1": ["split___landing_route_view_1.EEEEEEEEEEEEEEEEEEEEEE"]}"#);
        let err = FrontEnd::resolve(&options).unwrap_err().to_string();
        assert!(err.contains("names no chunk of the settings page"), "{err}");

        write(&manifest, r#"{"__settings_route_view_2": ["split___settings_route_view_2.FFFFFFFFFFFFFFFFFFFFFF"]}"#);
        let resolved = FrontEnd::resolve(&options).expect("control: the whole build is there");
        assert_eq!(resolved.stylesheet, "/pkg/libero.CCCCCCCCCCCCCCCCCCCCCC.css");
        assert_eq!(resolved.settings_chunks, ["/pkg/split___settings_route_view_2.FFFFFFFFFFFFFFFFFFFFFF.wasm"]);
    }
}

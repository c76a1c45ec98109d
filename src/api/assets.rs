//! The web dashboard's files, embedded in the binary (no Node at build time, no CDN at run
//! time): web/dist, as built by scripts/web-build.sh and committed (docs/dashboard.md).

/// Every embedded file: (URL path without its leading "/", content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../../web/dist/index.html"),
    ),
    (
        "assets/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dist/app.js"),
    ),
    (
        "assets/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/dist/app.css"),
    ),
];

/// The content type and bytes of the dashboard file at URL path `path`, with or without its
/// leading "/": "/" (or "", "/index.html") is the page, "/assets/app.js" and
/// "/assets/app.css" its script and style sheet; `None` for anything else.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = if path == "index.html" { "" } else { path };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, ty, bytes)| (ty, bytes))
}

#[cfg(test)]
mod tests {
    use super::asset;

    const DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist");

    fn url(file: &str) -> String {
        if file == "index.html" {
            "/".to_string()
        } else {
            format!("/assets/{file}")
        }
    }

    #[test]
    fn every_file_of_web_dist_is_served_as_built() {
        let mut n = 0;
        for entry in std::fs::read_dir(DIST).unwrap() {
            let entry = entry.unwrap();
            let file = entry.file_name().into_string().unwrap();
            let on_disk = std::fs::read(entry.path()).unwrap();
            let Some((ty, bytes)) = asset(&url(&file)) else {
                panic!("web/dist/{file} is not embedded: add it to ASSETS in src/api/assets.rs");
            };
            assert_eq!(
                bytes,
                on_disk.as_slice(),
                "web/dist/{file} differs from the embedded one"
            );
            let want = match file.rsplit_once('.').map(|(_, ext)| ext) {
                Some("html") => "text/html",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                other => panic!("web/dist/{file}: no content type for {other:?}"),
            };
            assert!(ty.starts_with(want), "{file}: {ty}");
            n += 1;
        }
        assert!(n >= 3, "web/dist has only {n} files");
        // The router may pass the path with or without its leading "/".
        assert_eq!(asset("/index.html"), asset("/"));
        assert_eq!(asset(""), asset("/"));
        assert_eq!(asset("index.html"), asset("/"));
        assert_eq!(asset("assets/app.js"), asset("/assets/app.js"));
    }

    #[test]
    fn the_page_refers_only_to_embedded_assets() {
        let (_, page) = asset("/").unwrap();
        let page = std::str::from_utf8(page).unwrap();
        let refs: Vec<&str> = page
            .split('"')
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert!(refs.len() >= 2, "{refs:?}");
        for r in refs {
            assert!(asset(r).is_some(), "index.html refers to {r}, not embedded");
        }
        // Nothing from another origin: the page works offline.
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn unknown_paths_are_not_served() {
        for p in [
            "//",
            "/assets/",
            "assets/",
            "assets/nope.css",
            "/assets/nope.js",
            "/assets/../Cargo.toml",
            "/app.js",
            "/assets/app.js/",
            "/index.htm",
            "/api/v1/groups",
        ] {
            assert!(asset(p).is_none(), "{p:?} was served");
        }
    }
}

//! The embedded web dashboard's files. A placeholder until the dashboard lands: one minimal
//! index page that points at the API's document.

/// The file at `path` ("" or "index.html" for the index): its content type and bytes.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "" | "index.html" => Some(("text/html; charset=utf-8", INDEX.as_bytes())),
        _ => None,
    }
}

const INDEX: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>scalepilot</title></head>\n<body><h1>scalepilot</h1><p>The dashboard is not built into this binary. The API is described at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body></html>\n";

//! Bad requests, each answered with a JSON 4xx in the one error shape, with the right code,
//! message and field: never a 500, never plain text.

use super::{ADMIN, Api, OPERATOR, VIEWER};

/// One bad request and what must come back.
struct Case {
    method: &'static str,
    path: String,
    token: &'static str,
    /// (Content-Type header, body); None: neither.
    body: Option<(Option<&'static str>, String)>,
    status: u16,
    code: &'static str,
    /// A part of the message.
    message: &'static str,
    field: Option<&'static str>,
}

// One row of the table below: flat arguments read as a table, which a builder would not.
#[allow(clippy::too_many_arguments)]
fn case(
    method: &'static str,
    path: &str,
    token: &'static str,
    body: Option<&str>,
    status: u16,
    code: &'static str,
    message: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        path: path.to_string(),
        token,
        body: body.map(|b| (Some("application/json"), b.to_string())),
        status,
        code,
        message,
        field,
    }
}

const GROUP: &str = r#""min": 1, "max": 4, "source": {"kind": "static", "values": {"request_rate": 20}}, "target": {"kind": "command", "command": "true"}, "strategies": [{"kind": "target_tracking", "metric": "request_rate", "target_per_replica": 10}]"#;

#[test]
fn malformed_requests_get_a_json_4xx_naming_what_is_wrong() {
    let api = Api::start();
    let scale = "/api/v1/groups/web/scale";
    let pause = "/api/v1/groups/web/pause";
    let acts = "/api/v1/activities";
    let sim_config = "name: sim\\nmin: 1\\nmax: 9\\nsource: {kind: static, values: {request_rate: 1}}\\ntarget: {kind: command, command: \\\"true\\\"}\\nstrategies:\\n  - {kind: target_tracking, metric: request_rate, target_per_replica: 10}\\n";
    let mut cases = vec![
        // Bodies: syntax, types, shape, unknown and missing fields.
        case(
            "POST",
            scale,
            OPERATOR,
            Some("{"),
            400,
            "invalid",
            "invalid JSON: EOF while parsing",
            None,
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": "x"} trailing"#),
            400,
            "invalid",
            "invalid JSON: trailing characters",
            None,
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": "five", "reason": "x"}"#),
            422,
            "invalid",
            "invalid type: string \"five\", expected u32",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": -1, "reason": "x"}"#),
            422,
            "invalid",
            "invalid value: integer `-1`, expected u32",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 2.5, "reason": "x"}"#),
            422,
            "invalid",
            "invalid type: floating point `2.5`, expected u32",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3}"#),
            422,
            "invalid",
            "missing field `reason`",
            Some("reason"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"reason": "x"}"#),
            422,
            "invalid",
            "missing field `replicas`",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": "x", "extra": 1}"#),
            422,
            "invalid",
            "unknown field `extra`",
            Some("extra"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": "  "}"#),
            422,
            "invalid",
            "reason must not be empty",
            Some("reason"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": 7}"#),
            422,
            "invalid",
            "invalid type: integer `7`, expected a string",
            Some("reason"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": "x", "force": "yes"}"#),
            422,
            "invalid",
            "invalid type: string \"yes\", expected a boolean",
            Some("force"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some("true"),
            422,
            "invalid",
            "invalid type: boolean `true`, expected struct ScaleBody",
            None,
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some("null"),
            422,
            "invalid",
            "invalid type: null, expected struct ScaleBody",
            None,
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(""),
            400,
            "invalid",
            "invalid JSON: EOF while parsing",
            None,
        ),
        // Manual scaling's bounds and who may force them.
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 11, "reason": "x"}"#),
            422,
            "invalid",
            "max",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 0, "reason": "x"}"#),
            422,
            "invalid",
            "min",
            Some("replicas"),
        ),
        case(
            "POST",
            scale,
            OPERATOR,
            Some(r#"{"replicas": 12, "reason": "x", "force": true}"#),
            403,
            "forbidden",
            "force needs admin",
            Some("force"),
        ),
        case(
            "POST",
            "/api/v1/groups/nope/scale",
            OPERATOR,
            Some(r#"{"replicas": 3, "reason": "x"}"#),
            404,
            "not_found",
            "no group named `nope`",
            Some("name"),
        ),
        // Pause bodies.
        case(
            "POST",
            pause,
            OPERATOR,
            Some(r#"{"scale_in": true}"#),
            422,
            "invalid",
            "missing field `scale_out`",
            Some("scale_out"),
        ),
        case(
            "POST",
            pause,
            OPERATOR,
            Some(r#"{"scale_in": 1, "scale_out": false}"#),
            422,
            "invalid",
            "invalid type: integer `1`, expected a boolean",
            Some("scale_in"),
        ),
        case(
            "POST",
            pause,
            OPERATOR,
            Some(r#"{"scale_in": true, "scale_out": false, "both": true}"#),
            422,
            "invalid",
            "unknown field `both`",
            Some("both"),
        ),
        case(
            "POST",
            "/api/v1/groups/nope/pause",
            OPERATOR,
            Some(r#"{"scale_in": true, "scale_out": false}"#),
            404,
            "not_found",
            "no group named `nope`",
            None,
        ),
        // Paths and methods.
        case(
            "GET",
            "/api/v1/groups/nope",
            VIEWER,
            None,
            404,
            "not_found",
            "no group named `nope`",
            Some("name"),
        ),
        case(
            "GET",
            "/api/v1/groups/bad%20name",
            VIEWER,
            None,
            400,
            "invalid",
            "is not a group name",
            Some("name"),
        ),
        case(
            "GET",
            "/api/v1/groups/-web",
            VIEWER,
            None,
            400,
            "invalid",
            "is not a group name",
            Some("name"),
        ),
        case(
            "GET",
            "/api/v1/groups/nope/series",
            VIEWER,
            None,
            404,
            "not_found",
            "no group named `nope`",
            Some("name"),
        ),
        case(
            "GET",
            "/api/v1/groups/nope/recommendation",
            VIEWER,
            None,
            404,
            "not_found",
            "no group named `nope`",
            Some("name"),
        ),
        case(
            "GET",
            "/api/v1/nothing",
            VIEWER,
            None,
            404,
            "not_found",
            "no route /api/v1/nothing",
            Some("path"),
        ),
        case(
            "GET",
            "/nothing/at/all",
            VIEWER,
            None,
            404,
            "not_found",
            "no route /nothing/at/all",
            Some("path"),
        ),
        case(
            "GET",
            "/assets/missing.js",
            VIEWER,
            None,
            404,
            "not_found",
            "no file",
            None,
        ),
        case(
            "DELETE",
            acts,
            ADMIN,
            None,
            405,
            "method_not_allowed",
            "/api/v1/activities does not take DELETE",
            None,
        ),
        case(
            "PATCH",
            "/api/v1/groups/web",
            ADMIN,
            None,
            405,
            "method_not_allowed",
            "does not take PATCH",
            None,
        ),
        case(
            "GET",
            scale,
            VIEWER,
            None,
            405,
            "method_not_allowed",
            "does not take GET",
            None,
        ),
        case(
            "PUT",
            "/healthz",
            ADMIN,
            None,
            405,
            "method_not_allowed",
            "/healthz does not take PUT",
            None,
        ),
        // Query parameters.
        case(
            "GET",
            &format!("{acts}?limit=0"),
            VIEWER,
            None,
            400,
            "invalid",
            "limit must be a whole number from 1 to 1000",
            Some("limit"),
        ),
        case(
            "GET",
            &format!("{acts}?limit=5000"),
            VIEWER,
            None,
            400,
            "invalid",
            "limit must be a whole number from 1 to 1000",
            Some("limit"),
        ),
        case(
            "GET",
            &format!("{acts}?limit=ten"),
            VIEWER,
            None,
            400,
            "invalid",
            "limit must be a whole number",
            Some("limit"),
        ),
        case(
            "GET",
            &format!("{acts}?since=yesterday"),
            VIEWER,
            None,
            400,
            "invalid",
            "since must be an RFC 3339 time",
            Some("since"),
        ),
        case(
            "GET",
            &format!("{acts}?until=2026-13-01T00:00:00Z"),
            VIEWER,
            None,
            400,
            "invalid",
            "until must be an RFC 3339 time",
            Some("until"),
        ),
        case(
            "GET",
            &format!("{acts}?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"),
            VIEWER,
            None,
            400,
            "invalid",
            "since is after until",
            Some("since"),
        ),
        case(
            "GET",
            &format!("{acts}?status=done"),
            VIEWER,
            None,
            400,
            "invalid",
            "status must be one of pending, succeeded, failed, interrupted, dry_run",
            Some("status"),
        ),
        case(
            "GET",
            &format!("{acts}?cursor=abc"),
            VIEWER,
            None,
            400,
            "invalid",
            "cursor \"abc\" is not one this API gave",
            Some("cursor"),
        ),
        case(
            "GET",
            &format!("{acts}?cursor=-5"),
            VIEWER,
            None,
            400,
            "invalid",
            "is not one this API gave",
            Some("cursor"),
        ),
        case(
            "GET",
            "/api/v1/groups?limit=0",
            VIEWER,
            None,
            400,
            "invalid",
            "limit must be a whole number from 1 to 1000, got \"0\"",
            Some("limit"),
        ),
        case(
            "GET",
            &format!("{acts}?grup=web"),
            VIEWER,
            None,
            400,
            "invalid",
            "unknown query parameter `grup`",
            Some("grup"),
        ),
        case(
            "GET",
            &format!("{acts}?limit=1&limit=2"),
            VIEWER,
            None,
            400,
            "invalid",
            "`limit` is given twice",
            Some("limit"),
        ),
        case(
            "GET",
            &format!("{acts}?group=%ZZ"),
            VIEWER,
            None,
            400,
            "invalid",
            "not valid percent-encoded UTF-8",
            Some("group"),
        ),
        case(
            "GET",
            "/api/v1/errors?status=disk",
            VIEWER,
            None,
            400,
            "invalid",
            "status must be one of source, target, store, config, alert",
            Some("status"),
        ),
        case(
            "GET",
            "/api/v1/audit?status=maybe",
            ADMIN,
            None,
            400,
            "invalid",
            "status must be one of allowed, denied",
            Some("status"),
        ),
        case(
            "GET",
            "/api/v1/audit?group=web",
            ADMIN,
            None,
            400,
            "invalid",
            "unknown query parameter `group`",
            Some("group"),
        ),
        case(
            "GET",
            "/api/v1/groups/web/series?points=5",
            VIEWER,
            None,
            400,
            "invalid",
            "unknown query parameter `points`",
            Some("points"),
        ),
        // Database groups: validated like the config file, names unique with the file's.
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(&format!(r#"{{"name": "web", {GROUP}}}"#)),
            409,
            "conflict",
            "`web` is a group of the config file",
            Some("name"),
        ),
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(&format!("{{{GROUP}}}")),
            422,
            "invalid",
            "missing field `name`",
            Some("name"),
        ),
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(r#""web""#),
            422,
            "invalid",
            "expected a JSON object",
            None,
        ),
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(&format!(
                r#"{{"name": "db1", {}}}"#,
                GROUP.replace(r#""min": 1"#, r#""min": 9"#)
            )),
            422,
            "invalid",
            "min: min 9 is greater than max 4",
            Some("min"),
        ),
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(&format!(
                r#"{{"name": "db1", {}}}"#,
                GROUP.replace(r#""target_per_replica": 10"#, r#""target_per_replica": -1"#)
            )),
            422,
            "invalid",
            "strategies[0].target_per_replica: ",
            Some("strategies[0].target_per_replica"),
        ),
        case(
            "POST",
            "/api/v1/groups",
            ADMIN,
            Some(&format!(r#"{{"name": "db1", "enabled": "yes", {GROUP}}}"#)),
            422,
            "invalid",
            "enabled must be true or false",
            Some("enabled"),
        ),
        case(
            "PUT",
            "/api/v1/groups/db2",
            ADMIN,
            Some(&format!(r#"{{"name": "other", {GROUP}}}"#)),
            422,
            "invalid",
            "differs from the path's `db2`",
            Some("name"),
        ),
        case(
            "DELETE",
            "/api/v1/groups/absent",
            ADMIN,
            None,
            404,
            "not_found",
            "no database group named `absent`",
            Some("name"),
        ),
        case(
            "DELETE",
            "/api/v1/groups/web",
            ADMIN,
            None,
            409,
            "conflict",
            "`web` is a group of the config file",
            Some("name"),
        ),
        // Simulate.
        case(
            "POST",
            "/api/v1/simulate",
            OPERATOR,
            Some(&format!(
                r#"{{"config": "{sim_config}", "trace": "moon_landing"}}"#
            )),
            404,
            "not_found",
            "the shipped traces are nasa_http_1995, nab_nyc_taxi, nab_elb_request_count, azure_llm_conv_2023",
            Some("trace"),
        ),
        case(
            "POST",
            "/api/v1/simulate",
            OPERATOR,
            Some(r#"{"config": "name: [", "trace": "nasa_http_1995"}"#),
            422,
            "invalid",
            "config",
            None,
        ),
        case(
            "POST",
            "/api/v1/simulate",
            OPERATOR,
            Some(&format!(
                r#"{{"config": "{sim_config}", "trace": {{"csv": "not,a\ntrace"}}}}"#
            )),
            422,
            "invalid",
            "invalid trace",
            Some("trace"),
        ),
        case(
            "POST",
            "/api/v1/simulate",
            OPERATOR,
            Some(r#"{"config": "x", "trace": "nasa_http_1995", "speed": 2}"#),
            422,
            "invalid",
            "unknown field `speed`",
            Some("speed"),
        ),
        case(
            "POST",
            "/api/v1/simulate",
            OPERATOR,
            Some(r#"{"trace": "nasa_http_1995"}"#),
            422,
            "invalid",
            "missing field `config`",
            Some("config"),
        ),
    ];
    // Content types.
    for (ct, label) in [
        (None, "no Content-Type"),
        (Some("text/plain"), "text/plain"),
    ] {
        cases.push(Case {
            method: "POST",
            path: scale.to_string(),
            token: OPERATOR,
            body: Some((ct, r#"{"replicas": 3, "reason": "x"}"#.to_string())),
            status: 415,
            code: "unsupported_media_type",
            message: "send `Content-Type: application/json`",
            field: None,
        });
        let _ = label;
    }
    let n = cases.len();
    assert!(n >= 40, "{n} cases");
    for c in cases {
        let mut headers = vec![format!("Authorization: Bearer {}", c.token)];
        let body = c.body.as_ref().map(|(ct, b)| {
            if let Some(ct) = ct {
                headers.push(format!("Content-Type: {ct}"));
            }
            b.as_bytes()
        });
        let r = api.send(c.method, &c.path, &headers, body);
        let what = format!(
            "{} {} {:?}",
            c.method,
            c.path,
            c.body.as_ref().map(|b| &b.1)
        );
        assert_eq!(r.status, c.status, "{what}: {r:?}");
        let (code, message, field) = r.error();
        assert_eq!(code, c.code, "{what}: {r:?}");
        assert!(
            message.contains(c.message),
            "{what}: message {message:?} lacks {:?}",
            c.message
        );
        if c.field.is_some() || c.status != 422 {
            assert_eq!(field, c.field, "{what}: {r:?}");
        }
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{what}: {r:?}"
        );
    }

    // Over 1 MiB: refused on the declared length, before the body is read …
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = api.send(
        "POST",
        scale,
        &[
            format!("Authorization: Bearer {OPERATOR}"),
            "Content-Type: application/json".into(),
        ],
        Some(&big),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(
        r.error(),
        (
            "payload_too_large",
            "the body is larger than 1048576 bytes (1 MiB)",
            None
        )
    );
    // … and, sent in chunks without a length, once 1 MiB has been read.
    let mut raw = format!(
        "POST {scale} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        raw.extend_from_slice(format!("{:x}\r\n", 65536).as_bytes());
        raw.extend_from_slice(&[b' '; 65536]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = api.raw(raw);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.error().0, "payload_too_large");

    // A bad Authorization header is a 401 in the same shape.
    let r = api.send(
        "GET",
        "/api/v1/groups",
        &["Authorization: Basic dXNlcjpwYXNz".into()],
        None,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.error(),
        (
            "unauthorized",
            "the Authorization header must be `Bearer <token>`",
            None
        )
    );

    // The daemon is still serving and nothing above changed the group.
    let r = api.get("/api/v1/groups/web", VIEWER);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["paused"],
        serde_json::json!({"scale_in": false, "scale_out": false})
    );
    assert!(
        !api.daemon.log().contains("panicked"),
        "{}",
        api.daemon.log()
    );
}

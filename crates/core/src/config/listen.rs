//! The API's `listen` address: an IP address and port, or `localhost:PORT`.
//!
//! The core does no IO, so host names are not resolved; `localhost` is the one name taken,
//! as 127.0.0.1, because it is what people write for "this machine only" and needs no lookup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080` or `localhost:8080` → the socket address;
/// else a message saying what is expected.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "\"{text}\" has no port: expected an address and port such as \"127.0.0.1:8080\""
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{text}\": port `{port}` is not a number from 0 to 65535"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!(
            "\"{text}\": write an IPv6 address in brackets, such as \"[::1]:{port}\""
        ));
    }
    Err(format!(
        "\"{text}\": `{host}` is not an IP address: expected an address such as \"127.0.0.1:{port}\", \"[::1]:{port}\", \"0.0.0.0:{port}\" or \"localhost:{port}\" (other host names are not resolved)"
    ))
}

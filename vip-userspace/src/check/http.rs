//! HTTP_GET and SSL_GET: `GET path HTTP/1.0` (as keepalived sends it), the status checked
//! and, when asked, the MD5 digest of the body.
//!
//! TLS does not verify the server's certificate, as keepalived's SSL_GET does not by
//! default: the check asks whether the server answers, not who it is, and real servers
//! behind a VIP usually present the VIP's name, not their own address. The handshake
//! itself (and so a server that cannot complete one) is still checked.

use std::{net::SocketAddr, sync::Arc};

use md5::{Digest as _, Md5};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::CheckError;
use crate::lb::service::CheckKind;

/// The most of a response read: a health page, not a download.
pub const RESPONSE_CAP: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("TLS handshake with {addr}")]
    Tls {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to {addr}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("not an HTTP response ({0})")]
    Malformed(String),
    #[error("status {got}, expected {expected}")]
    Status { got: u16, expected: String },
    #[error("body digest {got}, expected {expected}")]
    Digest { got: String, expected: String },
}

/// One HTTP check of `kind` (an `Http` kind) against `addr`; the caller bounds its time.
pub async fn check(kind: &CheckKind, addr: SocketAddr) -> Result<(), CheckError> {
    let CheckKind::Http {
        tls,
        path,
        host,
        status,
        digest,
        ..
    } = kind
    else {
        return Ok(());
    };
    let host_header = host.clone().unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    });
    let request = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: vipd-check\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
    );
    // The caller's timeout bounds the connect with the rest of the exchange.
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| CheckError::Connect { addr, source })?;
    let response = if *tls {
        let name = match host {
            Some(h) => ServerName::try_from(h.clone())
                .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into())),
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let stream = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|source| HttpError::Tls { addr, source })?;
        exchange(stream, &request, addr).await?
    } else {
        exchange(tcp, &request, addr).await?
    };
    judge(&response, status, digest.as_ref())?;
    Ok(())
}

async fn exchange(
    mut s: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
    addr: SocketAddr,
) -> Result<Vec<u8>, HttpError> {
    let io = |source| HttpError::Io { addr, source };
    s.write_all(request.as_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() >= RESPONSE_CAP {
                    buf.truncate(RESPONSE_CAP);
                    break;
                }
            }
            // A TLS server that closes without close_notify: what it sent is whole
            // for HTTP/1.0 (the close ends the body).
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Err(io(e)),
        }
    }
    Ok(buf)
}

/// Checks a whole response: its status among `accepted` (any 2xx when empty) and, with
/// `digest`, the MD5 of its body.
pub fn judge(
    response: &[u8],
    accepted: &[u16],
    digest: Option<&[u8; 16]>,
) -> Result<(), HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let body_at = match r.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::Malformed("the headers never ended".into()));
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let code = r.code.unwrap_or(0);
    let ok = if accepted.is_empty() {
        (200..300).contains(&code)
    } else {
        accepted.contains(&code)
    };
    if !ok {
        let expected = if accepted.is_empty() {
            "2xx".to_owned()
        } else {
            format!("{accepted:?}")
        };
        return Err(HttpError::Status {
            got: code,
            expected,
        });
    }
    if let Some(want) = digest {
        let got: [u8; 16] = Md5::digest(&response[body_at..]).into();
        if &got != want {
            return Err(HttpError::Digest {
                got: hex(&got),
                expected: hex(want),
            });
        }
    }
    Ok(())
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[expect(
    deprecated,
    reason = "ring has no post-quantum key exchange; a health check carries nothing \
              secret, and ring builds without aws-lc's cmake toolchain"
)]
fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts any certificate (see the module docs), while still checking that the server
/// signed the handshake with the key of the certificate it sent.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhealthy\n";

    #[test]
    fn any_2xx_passes_by_default_and_a_listed_status_must_match() {
        assert!(judge(OK, &[], None).is_ok());
        assert!(judge(b"HTTP/1.1 204 No Content\r\n\r\n", &[], None).is_ok());
        assert!(matches!(
            judge(b"HTTP/1.1 503 Busy\r\n\r\n", &[], None),
            Err(HttpError::Status { got: 503, .. })
        ));
        assert!(judge(b"HTTP/1.1 302 Found\r\n\r\n", &[302], None).is_ok());
        assert!(judge(OK, &[302], None).is_err());
    }

    #[test]
    fn the_digest_is_the_md5_of_the_body_alone() {
        // md5("healthy\n")
        let want: [u8; 16] = Md5::digest(b"healthy\n").into();
        let empty: [u8; 16] = Md5::digest(b"").into();
        assert_eq!(hex(&empty), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(judge(OK, &[], Some(&want)).is_ok());
        let other: [u8; 16] = Md5::digest(b"sick\n").into();
        assert!(matches!(
            judge(OK, &[], Some(&other)),
            Err(HttpError::Digest { .. })
        ));
    }

    #[test]
    fn garbage_and_cut_responses_fail() {
        assert!(matches!(
            judge(b"SSH-2.0-OpenSSH\r\n", &[], None),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            judge(b"HTTP/1.0 200 OK\r\nX: y", &[], None),
            Err(HttpError::Malformed(_))
        ));
        assert!(judge(b"", &[], None).is_err());
    }
}

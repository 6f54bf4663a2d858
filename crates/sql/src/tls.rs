//! rustls client configurations for the libpq TLS modes (ring as the
//! crypto provider; the endpoint's CA, else the system's trusted roots).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::TlsMode;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots as DER (honours `SSL_CERT_FILE` / `SSL_CERT_DIR`).
pub(crate) fn system_roots() -> Result<Vec<CertificateDer<'static>>, String> {
    let loaded = rustls_native_certs::load_native_certs();
    if loaded.certs.is_empty() {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no trusted root certificates found (set SSL_CERT_FILE){}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(": {}", errors.join("; "))
            }
        ));
    }
    Ok(loaded.certs)
}

/// The certificates of a PEM bundle, as DER. The error never quotes the
/// text.
pub(crate) fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| "the trusted CA is not valid PEM".to_owned())?;
    if certificates.is_empty() {
        return Err("the trusted CA holds no PEM certificate".to_owned());
    }
    Ok(certificates)
}

/// Only the certificates of a PEM bundle, as PEM again: what a trusted CA
/// may carry further (into claims' Secrets), whatever else the text held
/// (a private key beside them stays behind).
pub fn certificates_only(pem: &str) -> Result<String, String> {
    use base64::Engine as _;
    let mut out = String::new();
    for certificate in pem_certificates(pem)? {
        let encoded = base64::engine::general_purpose::STANDARD.encode(certificate.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(out)
}

/// The roots the verifying modes trust: `trusted_ca` when given, else the
/// system's.
pub(crate) fn roots(trusted_ca: Option<&str>) -> Result<Vec<CertificateDer<'static>>, String> {
    match trusted_ca {
        Some(pem) => pem_certificates(pem),
        None => system_roots(),
    }
}

/// The client configuration for `mode`, trusting `trusted_ca` (else the
/// system's roots) when it verifies; `None` for [`TlsMode::Disable`].
pub(crate) fn client_config(
    mode: TlsMode,
    trusted_ca: Option<&str>,
) -> Result<Option<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable => return Ok(None),
        // libpq without a root certificate: encrypted, not authenticated.
        TlsMode::Prefer | TlsMode::Require => Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(self::roots(trusted_ca)?);
            if added == 0 {
                return Err("none of the trusted root certificates could be parsed".to_owned());
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| err.to_string())?;
            if mode == TlsMode::VerifyFull {
                webpki
            } else {
                Arc::new(AnyHostName { inner: webpki })
            }
        }
    };
    Ok(Some(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

/// `prefer`/`require`: any certificate, but the handshake signatures are
/// still checked (the server must hold the key of the certificate it shows).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name may differ.
#[derive(Debug)]
struct AnyHostName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_a_configuration() {
        assert!(client_config(TlsMode::Disable, None).unwrap().is_none());
        for mode in [TlsMode::Prefer, TlsMode::Require] {
            assert!(client_config(mode, None).unwrap().is_some());
        }
        // The verifying modes need the system's roots (ca-certificates).
        if system_roots().is_ok() {
            for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
                assert!(client_config(mode, None).unwrap().is_some());
            }
        }
    }

    #[test]
    fn only_certificates_are_carried_on() {
        let der: Vec<u8> = (0..100u8).collect();
        let encoded = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&der)
        };
        let bundle = format!(
            "comment\n-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n\
             -----BEGIN CERTIFICATE-----\n{encoded}\n-----END CERTIFICATE-----\n"
        );
        let kept = certificates_only(&bundle).unwrap();
        assert!(
            !kept.contains("PRIVATE") && !kept.contains("c2VjcmV0"),
            "{kept}"
        );
        assert_eq!(pem_certificates(&kept).unwrap()[0].as_ref(), der.as_slice());
        assert!(kept.lines().all(|line| line.len() <= 64));
    }

    #[test]
    fn a_trusted_ca_must_be_pem_certificates_and_is_never_quoted() {
        for (text, complaint) in [
            ("", "holds no PEM certificate"),
            ("password=hunter2", "holds no PEM certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nhunter2\n-----END CERTIFICATE-----\n",
                "could be parsed",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nhunter2!\n-----END CERTIFICATE-----\n",
                "not valid PEM",
            ),
        ] {
            let err = client_config(TlsMode::VerifyFull, Some(text)).unwrap_err();
            assert!(err.contains(complaint), "{text:?}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}

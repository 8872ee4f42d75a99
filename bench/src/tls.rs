//! HTTPS for the mock upstream, as real upstreams speak it: a throw-away CA and a loopback
//! certificate (rcgen), a rustls acceptor offering one ALPN protocol (`http/1.1` or `h2`), and
//! the CA written as a PEM file that the gateways are told to trust (`SSL_CERT_FILE`, which the
//! platform verifier under reqwest reads on Linux).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The loopback certificate and its CA.
pub struct Certificates {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    /// The CA in PEM, for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
}

impl Certificates {
    /// A fresh CA and a certificate for `127.0.0.1` and `localhost` signed by it; the CA's PEM goes
    /// to `dir/bench-ca.pem`.
    pub fn generate(dir: &Path) -> anyhow::Result<Certificates> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "switchyard-bench loopback CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&leaf_key, &issuer)?;
        let ca_file = dir.join("bench-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).with_context(|| ca_file.display().to_string())?;
        Ok(Certificates {
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
            ca_file,
        })
    }

    /// A TLS acceptor offering exactly `alpn` (e.g. `b"h2"`), so the client speaks that protocol.
    pub fn acceptor(&self, alpn: &[u8]) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Serves `app` over TLS until the task is dropped. HTTP/2 connections allow many concurrent
/// streams (the open-streams mode multiplexes thousands over one connection, as a real upstream's
/// load balancer would allow a busy client).
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(100_000);
            let _ = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app)).await;
        });
    }
}

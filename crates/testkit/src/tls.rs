//! Throw-away certificates for servers under test, from the openssl CLI
//! (as hack/databases/lib.sh makes them for the database servers): a CA,
//! and server certificates it signs for `127.0.0.1` and `localhost`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// A CA whose key stays on disk to sign more server certificates.
pub struct TestCa {
    dir: PathBuf,
    /// PEM certificate of the CA: what clients trust.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate and its key, PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Start(format!("running openssl (is it installed?): {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Start(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl TestCa {
    /// A new CA in `dir` (created if missing).
    pub fn create(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Start(format!("{}: {e}", dir.display())))?;
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=dbaas-operator test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            cert: dir.join("ca.crt"),
            key: dir.join("ca.key"),
        })
    }

    /// A server certificate for `127.0.0.1` and `localhost` with subject
    /// CN `name`, written to `<dir>/<name>.crt` and `<name>.key`.
    pub fn server_cert(&self, name: &str) -> Result<ServerCert, Error> {
        let (crt, key, csr, ext) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        )?;
        std::fs::write(
            self.dir.join(&ext),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| Error::Start(format!("writing {ext}: {e}")))?;
        let ca_cert = self.cert.display().to_string();
        let ca_key = self.key.display().to_string();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        )?;
        Ok(ServerCert {
            cert: self.dir.join(crt),
            key: self.dir.join(key),
        })
    }
}

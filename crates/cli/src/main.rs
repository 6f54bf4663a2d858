use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use dbaas_cli::Cli;
use dbaas_cli::error::EXIT_ERROR;

fn main() -> ExitCode {
    // Usage errors exit with 2 here, inside clap.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(dbaas_cli::run::run(cli)) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(err) = stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
            {
                // A closed pipe (`| head`) is not worth a message.
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: writing output: {err}");
                    return ExitCode::from(EXIT_ERROR);
                }
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

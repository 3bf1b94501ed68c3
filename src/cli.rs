//! The command line: parses arguments, loads the config, and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::kafka::topics::{self, TopicReport};

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "License events from Kafka to signed webhook deliveries"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service against a real Kafka cluster until SIGTERM/Ctrl-C.
    Run {
        /// A TOML file overriding the built-in defaults (see config/defaults.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Create every topic hookrelay uses; report existing topics whose settings differ.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Only the owner e-mails: read webhook-notifications and e-mail the owner of each
    /// disabled endpoint over SMTP (the [notify] config), until SIGTERM/Ctrl-C. For running
    /// the notifier apart from `run` (with notify.enabled = false there).
    Notify {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The whole pipeline on an in-process Kafka with sample receivers, and live progress.
    Demo(crate::demo::DemoOptions),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print every Avro schema this build ships: version, fingerprints, Confluent ids.
    ///
    /// For producer teams checking their side: single-object records must carry one of the
    /// fingerprints listed (Java's `SchemaNormalization.parsingFingerprint64` prints the
    /// 64-bit number; the record header holds the bytes shown first).
    Schemas {
        /// Also show the Confluent schema ids this config maps (`codec.confluent_schema_ids`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print each schema's JSON text after its line.
        #[arg(long)]
        full: bool,
    },
    /// Create and revoke keys of the customer API.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print its secret token (shown once, never stored).
    Create {
        /// The account the key may see and change.
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        account: Option<String>,
        /// An operator key instead: it sees every account.
        #[arg(long)]
        operator: bool,
        /// What the key is for (shown to operators, never to its holder's customers).
        #[arg(long)]
        description: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revoke a key: every instance stops accepting it within moments.
    Revoke {
        /// The key id (key_…), as `create` printed it.
        key_id: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create missing topics (idempotent). Exits 1 if an existing topic's settings differ.
    Create {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file and print the effective configuration, secrets masked.
    Check { file: PathBuf },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(config.as_deref())?;
            crate::telemetry::logging::init(&config.log);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = crate::app::shutdown_on_signals();
                crate::app::run(config, prometheus::Registry::new(), shutdown, |started| {
                    tracing::info!(admin = %started.admin_addr, "hookrelay is running");
                })
                .await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Notify { config } => {
            let config = Config::load(config.as_deref())?;
            crate::telemetry::logging::init(&config.log);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = crate::app::shutdown_on_signals();
                crate::app::notify(config, prometheus::Registry::new(), shutdown, |started| {
                    tracing::info!(admin = %started.admin_addr, "hookrelay notify is running");
                })
                .await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(options) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(crate::demo::run(options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = Config::load(Some(&file))?;
            print!("{}", config.to_masked_toml());
            eprintln!("{}: valid", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKey { command } => api_key(command),
        Command::Schemas { config, full } => {
            let config = Config::load(config.as_deref())?;
            let schemas = crate::records::shipped_schemas()?;
            print!(
                "{}",
                crate::records::render_schemas(&schemas, &config.codec, full)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Topics {
            command: TopicsCommand::Create { config },
        } => {
            let config = Config::load(config.as_deref())?;
            anyhow::ensure!(
                config.kafka_configured(),
                "kafka.bootstrap_servers is empty: set it in the config file or HOOKRELAY__KAFKA__BOOTSTRAP_SERVERS"
            );
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let reports = runtime.block_on(async {
                crate::kafka::check_connection(&config.kafka).await?;
                let admin = crate::kafka::client_config(&config.kafka)
                    .create()
                    .context("creating the Kafka admin client")?;
                topics::ensure_topics(&admin, &topics::topic_specs(&config))
                    .await
                    .map_err(anyhow::Error::from)
            })?;
            print!("{}", topics::render_reports(&reports));
            let differs = reports
                .iter()
                .any(|(_, r)| matches!(r, TopicReport::Differs(_)));
            Ok(if differs {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn api_key(command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match command {
        ApiKeyCommand::Create {
            account,
            operator: _,
            description,
            config,
        } => {
            let config = Config::load(config.as_deref())?;
            let made = runtime.block_on(crate::api::keys::create(&config, account, description))?;
            println!("key id  {}", made.key.id);
            match &made.key.account_id {
                Some(account) => println!("scope   account {account}"),
                None => println!("scope   operator (every account)"),
            }
            println!("secret  {}", made.token);
            eprintln!(
                "The secret is shown only now: hookrelay keeps a hash of it. Send it as `Authorization: Bearer <secret>`."
            );
        }
        ApiKeyCommand::Revoke { key_id, config } => {
            let config = Config::load(config.as_deref())?;
            runtime.block_on(crate::api::keys::revoke(&config, &key_id))?;
            println!("revoked {key_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

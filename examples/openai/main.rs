//! An OpenAI chat client that survives rate limits, server errors, hangs and outages.
//!
//! With `OPENAI_API_KEY` set it sends one prompt to OpenAI (or to any compatible server at
//! `OPENAI_BASE_URL`) and prints the reply. Without it, it starts a simulated OpenAI server on
//! 127.0.0.1 and plays a scripted story that shows every behaviour, then prints a summary.
//!
//! ```text
//! cargo run --example openai
//! OPENAI_API_KEY=sk-... cargo run --example openai -- "Say hello"
//! ```

mod batch;
mod client;
mod server;
mod story;
mod summary;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use resilient::{BreakerConfig, RetryPolicy, configure_breaker, configure_policy};
use tokio::time::Instant;
use tracing_subscriber::EnvFilter;

use client::{BREAKER, ChatError, OpenAi, POLICY};
use server::SimServer;
use summary::{Summary, Tally};

const USAGE: &str = "\
Sends a prompt to OpenAI's chat completions API through a retry policy and a circuit breaker.

Usage: cargo run --example openai -- [OPTIONS] [PROMPT]...

With OPENAI_API_KEY set, sends PROMPT and prints the reply. Without it, starts a simulated
OpenAI server on 127.0.0.1 and plays a scripted story of rate limits, server errors, a hang, an
outage and a concurrent batch, then prints a summary.

Options:
  --batch <N>        send N prompts concurrently (simulation: 24 by default)
  --concurrency <N>  how many batch prompts run at once [default: 4]
  -h, --help         print this help

Environment:
  OPENAI_API_KEY     your API key; when unset, the simulated server answers
  OPENAI_BASE_URL    the API's base URL [default: https://api.openai.com/v1]
  OPENAI_MODEL       the model [default: gpt-4o-mini]
  RUST_LOG           log filter [default: info,resilient_runtime=debug]";

const DEFAULT_BATCH: usize = 24;

#[derive(Debug, Default, PartialEq)]
struct Options {
    prompt: Option<String>,
    batch: Option<usize>,
    concurrency: Option<usize>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|key| !key.trim().is_empty());
    match key {
        Some(key) => talk_to_openai(options, &key).await,
        None => simulate(options).await,
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut words = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let mut count = |name: &str| -> Result<Option<usize>, String> {
            let value = inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a number"))?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!("{name} needs a positive number, not `{value}`")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--batch" => options.batch = count("--batch")?,
            "--concurrency" => options.concurrency = count("--concurrency")?,
            "--" => words.extend(args.by_ref()),
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option `{other}`"));
            }
            _ => words.push(arg),
        }
    }
    if !words.is_empty() {
        options.prompt = Some(words.join(" "));
    }
    Ok(Some(options))
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,resilient_runtime=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_target(false)
        .init();
}

/// The policy and breaker for a real API: patient, since a completion can take a while.
fn configure_for_openai() -> Result<(), resilient::ConfigError> {
    configure_policy(
        POLICY,
        RetryPolicy::new()
            .base_delay(Duration::from_secs(1))
            .max_delay(Duration::from_secs(30))
            .timeout(Duration::from_secs(60))
            // A token limit can reset minutes away; say so rather than hang the caller.
            .max_hint(Duration::from_secs(60)),
    )?;
    configure_breaker(
        BREAKER,
        BreakerConfig::new()
            .failure_threshold(5)
            .open_duration(Duration::from_secs(30)),
    )?;
    Ok(())
}

/// The same shape at the simulation's pace, so the whole story fits in a few seconds.
fn configure_for_simulation() -> Result<(), resilient::ConfigError> {
    configure_policy(
        POLICY,
        RetryPolicy::new()
            .base_delay(Duration::from_millis(200))
            .max_delay(Duration::from_secs(2))
            .timeout(Duration::from_secs(1))
            .max_hint(Duration::from_secs(10)),
    )?;
    configure_breaker(
        BREAKER,
        BreakerConfig::new()
            .failure_threshold(5)
            .open_duration(Duration::from_secs(2)),
    )?;
    Ok(())
}

async fn simulate(options: Options) -> ExitCode {
    println!("No OPENAI_API_KEY set: starting a simulated OpenAI server on 127.0.0.1.");
    init_logging();
    if let Err(error) = configure_for_simulation() {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let server = match SimServer::start().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot start the simulated server on 127.0.0.1: {error}");
            return ExitCode::FAILURE;
        }
    };
    let client = match OpenAi::new(&server.base_url(), "sk-simulated", "gpt-4o-mini") {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("simulated server listening at {}", server.base_url());

    let started = Instant::now();
    let prompts = options.batch.unwrap_or(DEFAULT_BATCH);
    let concurrency = options.concurrency.unwrap_or(4);
    let tally = story::play(&server, &client, prompts, concurrency).await;
    println!();
    print!(
        "{}",
        Summary {
            tally,
            attempts: client.attempts(),
            server_requests: Some(server.requests()),
            breaker: resilient::breaker(BREAKER).status(),
            elapsed: started.elapsed(),
        }
    );
    ExitCode::SUCCESS
}

async fn talk_to_openai(options: Options, key: &str) -> ExitCode {
    init_logging();
    let base_url = std::env::var("OPENAI_BASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "https://api.openai.com/v1".into());
    let model = std::env::var("OPENAI_MODEL")
        .ok()
        .filter(|model| !model.trim().is_empty())
        .unwrap_or_else(|| "gpt-4o-mini".into());
    let Some(prompt) = options.prompt else {
        eprintln!("error: give a prompt, as in: cargo run --example openai -- \"Say hello\"");
        return ExitCode::from(2);
    };
    if let Err(error) = configure_for_openai() {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let client = match OpenAi::new(&base_url, key, &model) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: OPENAI_BASE_URL: {error}");
            return ExitCode::from(2);
        }
    };

    let Some(prompts) = options.batch else {
        return match client.chat(&prompt).await {
            Ok(reply) => {
                println!("{reply}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error, &client),
        };
    };

    let started = Instant::now();
    let concurrency = options.concurrency.unwrap_or(4);
    let tally = send_batch(&client, &prompt, prompts, concurrency).await;
    let failed = tally.failed();
    print!(
        "{}",
        Summary {
            tally,
            attempts: client.attempts(),
            server_requests: None,
            breaker: resilient::breaker(BREAKER).status(),
            elapsed: started.elapsed(),
        }
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Sends `prompts` numbered copies of `prompt` to the real API, `concurrency` at a time.
async fn send_batch(client: &OpenAi, prompt: &str, prompts: usize, concurrency: usize) -> Tally {
    let numbered = (1..=prompts).map(|n| format!("{prompt} (#{n})")).collect();
    batch::send_all(
        client,
        numbered,
        concurrency,
        |index, result| match result {
            Ok(reply) => println!("[{}] {reply}", index + 1),
            Err(error) => eprintln!("[{}] error ({}): {error}", index + 1, error.kind()),
        },
    )
    .await
}

fn fail(error: &ChatError, client: &OpenAi) -> ExitCode {
    eprintln!("error ({}): {error}", error.kind());
    let advice = match error {
        ChatError::Api { status, .. } if status.as_u16() == 401 => {
            "the server refused the key: check OPENAI_API_KEY".to_owned()
        }
        ChatError::Transport { .. } => format!(
            "is {} reachable? check OPENAI_BASE_URL and the network",
            client.endpoint()
        ),
        _ => String::new(),
    };
    if !advice.is_empty() {
        eprintln!("hint: {advice}");
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn flags_and_prompt() {
        let options = parse(&["--batch", "8", "--concurrency=3", "Say", "hello"]);
        let expected = Options {
            prompt: Some("Say hello".into()),
            batch: Some(8),
            concurrency: Some(3),
        };
        assert_eq!(options, Ok(Some(expected)));
        assert_eq!(parse(&["--help"]), Ok(None));
        let dashed = parse(&["--", "--batch"]).unwrap().unwrap();
        assert_eq!(dashed.prompt.as_deref(), Some("--batch"));
    }

    #[test]
    fn bad_flags_are_reported() {
        assert!(parse(&["--batch"]).unwrap_err().contains("needs a number"));
        assert!(parse(&["--batch", "0"]).unwrap_err().contains("positive"));
        assert!(parse(&["--concurrency", "x"]).unwrap_err().contains("`x`"));
        assert!(
            parse(&["--verbose"])
                .unwrap_err()
                .contains("unknown option")
        );
    }
}

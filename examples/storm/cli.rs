//! The command line: flags parse into [`Options`] or into a message that says what was wrong.

use std::path::PathBuf;

/// What a run of the example does.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The client counts of the sweep.
    pub clients: Vec<usize>,
    /// Runs averaged per cell.
    pub runs: u32,
    /// The seed every random draw derives from.
    pub seed: u64,
    /// Print the sweep as CSV instead of the tables.
    pub csv: bool,
    /// Where the three figures go, or `None` to draw none.
    pub figures: Option<Figures>,
}

/// The paths of the three SVG figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// Calls and completion time against clients, per strategy.
    pub storm: PathBuf,
    /// When the retries of a crowd land, per jitter kind.
    pub landing: PathBuf,
    /// The server's load through an outage, per setup.
    pub outage: PathBuf,
}

/// The usage text `--help` prints.
pub const USAGE: &str = "\
Simulates retry storms in virtual time: the model of the AWS Architecture Blog's
\"Exponential Backoff And Jitter\", a histogram of synchronised retries, and an outage.

usage: cargo run --release --example storm -- [options]

  --clients LIST       client counts, comma-separated        [10,20,...,190]
  --runs N             runs averaged per client count         [100]
  --seed N             seed of every random draw              [1]
  --csv                print strategy,clients,calls,time_ms rows instead of tables
  --svg PATH           the calls-and-time figure              [TARGET/storm/storm.svg]
  --landing-svg PATH   the retry landing histogram            [TARGET/storm/landing.svg]
  --outage-svg PATH    the outage load figure                 [TARGET/storm/outage.svg]
  --no-svg             draw no figures
  -h, --help           print this text

TARGET is $CARGO_TARGET_DIR when set, else target.";

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run with these options.
    Run(Options),
    /// Print the usage text.
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("storm");
    let mut options = Options {
        clients: (1..=19).map(|i| i * 10).collect(),
        runs: 100,
        seed: 1,
        csv: false,
        figures: Some(Figures {
            storm: dir.join("storm.svg"),
            landing: dir.join("landing.svg"),
            outage: dir.join("outage.svg"),
        }),
    };
    let mut svg = [None, None, None];
    let mut no_svg = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value; see --help"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--csv" => options.csv = true,
            "--no-svg" => no_svg = true,
            "--clients" => options.clients = parse_clients(&value()?)?,
            "--runs" => options.runs = parse_number(&flag, &value()?, 1)?,
            "--seed" => options.seed = parse_number(&flag, &value()?, 0)?,
            "--svg" => svg[0] = Some(PathBuf::from(value()?)),
            "--landing-svg" => svg[1] = Some(PathBuf::from(value()?)),
            "--outage-svg" => svg[2] = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument `{flag}`; see --help")),
        }
    }

    if no_svg {
        options.figures = None;
    } else if let Some(figures) = options.figures.as_mut() {
        let [storm, landing, outage] = svg;
        figures.storm = storm.unwrap_or(figures.storm.clone());
        figures.landing = landing.unwrap_or(figures.landing.clone());
        figures.outage = outage.unwrap_or(figures.outage.clone());
    }
    Ok(Command::Run(options))
}

fn parse_clients(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|item| parse_number::<usize>("--clients", item.trim(), 1))
        .collect()
}

fn parse_number<T>(flag: &str, text: &str, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match text.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "{flag} expects a whole number of at least {min}, got `{text}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|a| a.to_string()))? {
            Command::Run(options) => Ok(options),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_follow_the_study() {
        let options = run(&[]).unwrap();
        assert_eq!(options.clients.first(), Some(&10));
        assert_eq!(options.clients.last(), Some(&190));
        assert_eq!(options.clients.len(), 19);
        assert_eq!((options.runs, options.csv), (100, false));
    }

    #[test]
    fn flags_take_values_in_both_spellings() {
        let options = run(&["--clients", "5, 7", "--runs=3", "--seed", "9", "--csv"]).unwrap();
        assert_eq!(options.clients, [5, 7]);
        assert_eq!((options.runs, options.seed, options.csv), (3, 9, true));

        let options = run(&["--svg", "a.svg", "--outage-svg=b.svg"]).unwrap();
        let figures = options.figures.unwrap();
        assert_eq!(figures.storm, PathBuf::from("a.svg"));
        assert_eq!(figures.outage, PathBuf::from("b.svg"));
        assert!(run(&["--no-svg"]).unwrap().figures.is_none());
    }

    #[test]
    fn bad_input_is_an_error_that_names_the_flag() {
        let err = run(&["--runs", "0"]).unwrap_err();
        assert!(
            err.contains("--runs") && err.contains("at least 1"),
            "{err}"
        );
        assert!(run(&["--clients", "10,x"]).unwrap_err().contains("`x`"));
        assert!(run(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(
            run(&["--fast"])
                .unwrap_err()
                .contains("unknown argument `--fast`")
        );
        assert_eq!(parse(["-h".to_string()]), Ok(Command::Help));
    }
}

//! The `moq-bench` command: parses the arguments, runs the load ([`moq_bench::run`]), prints
//! the report and writes it as JSON with `--json`.

use moq_bench::{presets, Args};

fn main() {
    let args = match Args::parse_from(std::env::args().collect()) {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if args.cli.list_presets {
        print!("{}", presets::listing());
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("moq-bench: {e}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let outcome = moq_bench::run(args)?;
    print!("{}", outcome.report.table());
    if let Some(path) = &args.cli.json {
        let text = serde_json::to_string_pretty(&outcome.report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(e) = outcome.first_error {
        eprintln!("moq-bench: note: {e}");
    }
    Ok(())
}

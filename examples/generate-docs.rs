//! Writes the manual page and the shell completions generated from the command line's
//! definition: `cargo run --example generate-docs`, from the repository's top directory.

fn main() -> std::io::Result<()> {
    let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, text) in weak_modules::docgen::generated_files() {
        std::fs::write(top.join(path), text)?;
        println!("wrote {path}");
    }
    Ok(())
}

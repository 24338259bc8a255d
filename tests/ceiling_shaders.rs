//! The report's ceiling probes (`shaders/ceiling_*.wgsl`) parse and validate with naga, so a
//! broken probe fails here rather than in the middle of a benchmark run. No GPU needed.

fn validate(name: &str, source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    module
}

#[test]
fn fma_probe_has_sixteen_independent_chains() {
    let source = include_str!("../shaders/ceiling_fma.wgsl");
    let module = validate("ceiling_fma", source);
    assert!(module.entry_points.iter().any(|e| e.name == "main"));
    // The report's FLOP count assumes 16 chains, each updated 4 times per loop trip.
    for chain in 0..16 {
        let update = format!("a{chain} = fma(a{chain}, m, c);");
        assert_eq!(source.matches(&update).count(), 4, "chain a{chain}");
    }
}

#[test]
fn copy_probe_validates_with_the_reports_workgroup_size() {
    let module = validate("ceiling_copy", include_str!("../shaders/ceiling_copy.wgsl"));
    let main = module
        .entry_points
        .iter()
        .find(|e| e.name == "main")
        .expect("main");
    // examples/report.rs sizes its dispatch for 1024 invocations of 64 bytes each.
    assert_eq!(main.workgroup_size, [1024, 1, 1]);
}

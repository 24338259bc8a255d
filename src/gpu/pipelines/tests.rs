//! Checks every shader with naga, no GPU needed: it parses, validates, declares the
//! `ConvParams` block exactly as the host lays it out, and uses the host's workgroup size.
use super::{Shader, Storage, TiledShader};
use crate::gpu::gemm::{self, TileParams, TILE_PARAMS_FIELDS};
use crate::gpu::params::{ConvParams, CONV_PARAMS_FIELDS};
use crate::Precision;

fn module(shader: Shader) -> (naga::Module, naga::valid::ModuleInfo) {
    parse(shader.label(), shader.source(false))
}

/// `body` as the f32 pipelines compile it.
fn parse(label: &str, body: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    parse_as(label, body, Storage::of(Precision::F32))
}

/// `body` with the aliases of `storage`, validated with f16 allowed (naga refuses f16 without
/// the capability, and the host only compiles f16 on devices that have it).
pub(crate) fn parse_as(
    label: &str,
    body: &str,
    storage: Storage,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let source = storage.source(body);
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{label} ({storage:?}): {}", e.emit_to_string(&source)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SHADER_FLOAT16,
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{label} ({storage:?}): {e:?}"));
    (module, info)
}

/// Every element-type combination a pipeline is built with: one precision throughout, and a
/// split product's f32 scratch on either side of f16 tensors.
const STORAGES: [Storage; 4] = [
    Storage::of(Precision::F32),
    Storage::of(Precision::F16),
    Storage {
        input: Precision::F16,
        output: Precision::F32,
    },
    Storage {
        input: Precision::F32,
        output: Precision::F16,
    },
];

#[test]
fn every_shader_parses_and_validates_in_both_precisions() {
    for storage in STORAGES {
        for skip in [false, true] {
            for shader in Shader::CONV {
                parse_as(shader.label(), shader.source(skip), storage);
            }
            for shader in TiledShader::ALL {
                parse_as(shader.label(), shader.source(skip), storage);
            }
        }
        for shader in super::OpShader::ALL {
            parse_as(shader.label(), shader.source(), storage);
        }
    }
}

/// A kernel binds the skip tensor of a residual add, at `SKIP_BINDING`, exactly in its
/// variant with a skip: a pipeline without one binds no more than before.
#[test]
fn only_the_skip_variants_bind_the_skip_tensor() {
    let binds_skip = |label: &str, source: &str| {
        let (module, _) = parse(label, source);
        let binds = module
            .global_variables
            .iter()
            .any(|(_, v)| v.binding.as_ref().map(|b| b.binding) == Some(super::SKIP_BINDING));
        binds
    };
    for skip in [false, true] {
        for shader in Shader::CONV {
            assert_eq!(binds_skip(shader.label(), shader.source(skip)), skip);
        }
        for shader in TiledShader::ALL {
            assert_eq!(binds_skip(shader.label(), shader.source(skip)), skip);
        }
    }
}

#[test]
fn f16_sources_enable_f16_first_and_f32_sources_never() {
    let f16 = Storage::of(Precision::F16).source(Shader::Depthwise.source(false));
    assert!(f16.starts_with("enable f16;"));
    let f32 = Storage::of(Precision::F32).source(Shader::Depthwise.source(false));
    assert!(f32.starts_with("alias Elem = f32;"));
}

/// Every file in shaders/, fragments included, opens with a comment that says what it
/// computes and gives its binding table; the functions every kernel shares are defined in
/// shared.wgsl alone.
#[test]
fn shader_files_open_with_their_bindings_and_share_one_place() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
        assert!(header.len() >= 3, "{}: no opening comment", path.display());
        assert!(
            header.iter().any(|l| l.contains("Bindings")),
            "{}: the opening comment has no binding table",
            path.display()
        );
        let shared = path.file_name().unwrap() == "shared.wgsl";
        for function in [
            "fn activate(",
            "fn finish_sum(",
            "fn padded_row(",
            "fn padded_read(",
            "fn invocation_index(",
        ] {
            assert_eq!(
                text.contains(function),
                shared,
                "{}: {function}",
                path.display()
            );
        }
    }
    assert!(files >= 16, "{files} shader files");
}

#[test]
fn conv_params_block_matches_the_host_struct() {
    for shader in Shader::CONV {
        let (module, _) = module(shader);
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("ConvParams"))
            .unwrap_or_else(|| panic!("{}: no ConvParams struct", shader.label()));
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{}: ConvParams is not a struct", shader.label());
        };
        let names: Vec<&str> = members.iter().filter_map(|m| m.name.as_deref()).collect();
        assert_eq!(names, CONV_PARAMS_FIELDS, "{}", shader.label());
        for (i, m) in members.iter().enumerate() {
            assert_eq!(m.offset as usize, 4 * i, "{}: {:?}", shader.label(), m.name);
        }
        assert_eq!(
            *span as usize,
            std::mem::size_of::<ConvParams>(),
            "{}",
            shader.label()
        );
    }
}

#[test]
fn weight_window_matches_the_host() {
    for shader in Shader::CONV {
        let (module, _) = module(shader);
        let (_, var) = module
            .global_variables
            .iter()
            .find(|(_, v)| v.name.as_deref() == Some("weights"))
            .unwrap_or_else(|| panic!("{}: no weights", shader.label()));
        assert_eq!(var.space, naga::AddressSpace::Uniform, "{}", shader.label());
        let size = module.types[var.ty].inner.size(module.to_ctx());
        assert_eq!(
            size as usize,
            4 * super::WEIGHT_WINDOW_FLOATS,
            "{}",
            shader.label()
        );
    }
}

#[test]
fn workgroup_size_matches_the_host() {
    for shader in Shader::CONV {
        let (module, _) = module(shader);
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == "main")
            .unwrap_or_else(|| panic!("{}: no main", shader.label()));
        let size = match entry.workgroup_size_overrides {
            // @workgroup_size(WORKGROUP_SIZE) with an override: its default.
            Some([Some(x), None, None]) => {
                let naga::Expression::Override(o) = module.global_expressions[x] else {
                    panic!("{}: workgroup size is not an override", shader.label());
                };
                let o = &module.overrides[o];
                assert_eq!(o.name.as_deref(), Some("WORKGROUP_SIZE"));
                match o.init.map(|i| &module.global_expressions[i]) {
                    Some(naga::Expression::Literal(naga::Literal::U32(v))) => *v,
                    other => panic!("{}: default {other:?}", shader.label()),
                }
            }
            None => entry.workgroup_size.iter().product(),
            other => panic!("{}: workgroup size {other:?}", shader.label()),
        };
        assert_eq!(size, shader.workgroup_size(), "{}", shader.label());
    }
}

#[test]
fn tile_params_block_matches_the_host_struct() {
    for shader in TiledShader::ALL {
        let (module, _) = parse(shader.label(), shader.source(false));
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("TileParams"))
            .expect("no TileParams struct");
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("TileParams is not a struct");
        };
        let names: Vec<&str> = members.iter().filter_map(|m| m.name.as_deref()).collect();
        assert_eq!(names, TILE_PARAMS_FIELDS);
        for (i, m) in members.iter().enumerate() {
            assert_eq!(m.offset as usize, 4 * i, "{:?}", m.name);
        }
        assert_eq!(*span as usize, std::mem::size_of::<TileParams>());
    }
}

#[test]
fn tiles_match_the_host() {
    for shader in TiledShader::ALL {
        let (module, _) = parse(shader.label(), shader.source(false));
        let constant = |name: &str| {
            let (_, c) = module
                .constants
                .iter()
                .find(|(_, c)| c.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no const {name}"));
            match module.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => v as usize,
                ref e => panic!("{name} = {e:?}"),
            }
        };
        assert_eq!(constant("TILE_OC"), gemm::TILE_OC);
        assert_eq!(constant("TILE_P"), gemm::TILE_P);
        assert_eq!(constant("TILE_K"), gemm::TILE_K);
        let main = module
            .entry_points
            .iter()
            .find(|e| e.name == shader.entry_point())
            .unwrap();
        let [x, y, z] = main.workgroup_size;
        assert_eq!((x * y * z) as usize, gemm::WORKGROUP_SIZE);
    }
}

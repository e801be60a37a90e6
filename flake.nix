{
  description = "strata: daemonless, byte-reproducible layered OCI/Docker images from Nix closures";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      packages = forAll (pkgs: rec {
        strata = pkgs.buildNpmPackage {
          pname = "strata";
          version = (builtins.fromJSON (builtins.readFile ./package.json)).version;
          src = pkgs.lib.cleanSource ./.;
          # The dependencies come from package-lock.json itself (each entry's resolved URL and
          # integrity hash): no fixed-output hash to keep in step with the lock file.
          npmDeps = pkgs.importNpmLock { npmRoot = ./.; };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          nodejs = pkgs.nodejs_20;
          # V8's code cache for the CLI (src/cli/bundle.mjs) differs from one recording to the
          # next: left out, so the package is the same bytes from every build.
          env.STRATA_CODE_CACHE = "off";
          # Tests need podman, skopeo and a registry; they run in CI, not in the Nix sandbox.
          doCheck = false;
          meta = {
            description = "Daemonless, byte-reproducible layered container images from Nix closures";
            mainProgram = "strata";
          };
        };
        default = strata;
      });

      # `buildLayeredImage { name, tag, contents, config, maxLayers, fromImage, created }`, in the
      # shape of dockerTools.streamLayeredImage: a docker-archive of `contents` and their closure
      # (written by exportReferencesGraph), built by strata inside the derivation. `tag = null`
      # tags the image with the output path's hash, as nixpkgs does; `layering` and `extraArgs`
      # pass strata's own choices through.
      lib = forAll (pkgs: {
        buildLayeredImage =
          { name
          , tag ? null
          , contents ? [ ]
          , config ? { }
          , maxLayers ? 100
          , fromImage ? null
          , created ? "1970-01-01T00:00:01Z"
          , layering ? "stable"
          , extraArgs ? [ ]
          }:
          let
            lib = pkgs.lib;
            arg = lib.escapeShellArg;
            json = v: arg (builtins.toJSON v);
            list = flag: values: map (v: "${flag} ${arg v}") values;
            configArgs =
              lib.optionals (config ? Entrypoint) [ "--entrypoint ${json config.Entrypoint}" ]
              ++ lib.optionals (config ? Cmd) [ "--cmd ${json config.Cmd}" ]
              ++ list "--env" (config.Env or [ ])
              ++ lib.optionals (config ? WorkingDir) [ "--workdir ${arg config.WorkingDir}" ]
              ++ lib.optionals (config ? User) [ "--user ${arg config.User}" ]
              ++ list "--label" (lib.mapAttrsToList (k: v: "${k}=${v}") (config.Labels or { }))
              ++ list "--expose" (builtins.attrNames (config.ExposedPorts or { }))
              ++ list "--volume" (builtins.attrNames (config.Volumes or { }))
              ++ lib.optionals (config ? StopSignal) [ "--stop-signal ${arg config.StopSignal}" ];
            strata = self.packages.${pkgs.system}.strata;
          in
          pkgs.runCommand "${name}.tar"
            {
              __structuredAttrs = true;
              exportReferencesGraph.closure = contents;
              nativeBuildInputs = [ strata pkgs.jq ];
            }
            ''
              jq '.closure' "$NIX_ATTRS_JSON_FILE" > closure.json
              tag=${if tag == null then ''"$(basename "$out" | cut -d- -f1)"'' else arg tag}
              strata build closure.json --store-root / --no-cache \
                --tag ${arg name}:"$tag" \
                --max-layers ${toString maxLayers} --layering ${arg layering} \
                --created ${arg created} --mtime 1 \
                ${lib.optionalString (fromImage != null) "--from ${arg "docker-archive:${fromImage}"}"} \
                ${builtins.concatStringsSep " " (configArgs ++ map arg extraArgs)} \
                -o "$out"
            '';
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_20 pkgs.gnutar pkgs.pigz pkgs.skopeo pkgs.podman pkgs.umoci ];
        };
      });
    };
}

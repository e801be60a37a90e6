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
          # Update after changing package-lock.json: nix build reports the expected hash.
          npmDepsHash = pkgs.lib.fakeHash;
          nodejs = pkgs.nodejs_20;
          # Tests need podman, skopeo and a registry; they run in CI, not in the Nix sandbox.
          doCheck = false;
          meta = {
            description = "Daemonless, byte-reproducible layered container images from Nix closures";
            mainProgram = "strata";
          };
        };
        default = strata;
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_20 pkgs.gnutar pkgs.pigz pkgs.skopeo pkgs.podman pkgs.umoci ];
        };
      });
    };
}

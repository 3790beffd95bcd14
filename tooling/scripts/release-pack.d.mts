/** A workspace package that is published. */
export interface PublishablePackage {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
}

/** A packed tarball. */
export interface PackedTarball extends PublishablePackage {
  readonly file: string;
}

export declare function publishablePackages(): PublishablePackage[];
export declare function tarballName(name: string, version: string): string;
export declare function checkTarball(file: string): { name: string; version: string; problems: string[] };
export declare function releasePack(outDir: string): PackedTarball[];

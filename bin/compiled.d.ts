export declare const ROOT: string;
export declare const DIST: string;
export declare const STAMP: string;
export declare const COMPILED_TREES: string[];
export declare function isCheckout(): boolean;
export declare function compiledIsFresh(): boolean;
export declare function runnable(tsPath: string): { script: string; execArgv: string[] };

// The TypeScript models: the few steps that fit a statistical model on compact per-customer arrays.
import type { CodeModel } from '../runner.js';

export const codeModels: CodeModel[] = [];

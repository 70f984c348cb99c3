import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["src/generated/**", "node_modules/**", ".tap/**", "test/fixtures/nextApp/.next/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // One bundled copy of typebox (scripts/install/bundleTypebox.mjs): its ~680 modules cost every process 250 ms.
      "no-restricted-imports": ["error", { patterns: [{ regex: "^typebox(/|$)", message: "import from #typebox, #typebox/value or #typebox/system (the install-time bundle)" }] }],
    },
  },
);
